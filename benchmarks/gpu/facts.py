"""Facts about the machine a benchmark ran on: GPU, driver, torch, CUDA, packages, rendering.

Prints one ``key: value`` line per fact (and writes them as JSON with ``--json``):
date, host, Python, CPUs, memory; ``nvidia-smi``'s GPU, driver and memory; torch, its
CUDA and cuDNN, the device's name, capability and memory, a bf16 matrix product's
TFLOP/s on CUDA; the versions and locations of the packages the suite imports; whether
TorchRL's C++ extension loaded; and one rendered, ground-truth-segmented, reafferent
cheetah-run rollout through ``torchrl_psp.envs.make_env`` (env steps/s, the GL renderer
that drew it, mean pixel value: 0 means nothing was drawn).

Usage::

    python benchmarks/gpu/facts.py [--json facts.json] [--render-steps 50]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable

PACKAGES = (
    "torch",
    "torchrl",
    "tensordict",
    "hoptorch",
    "pyvers",
    "mujoco",
    "dm_control",
    "dm_env",
    "OpenGL",
    "segment_anything",
    "hydra",
    "omegaconf",
    "numpy",
    "scipy",
    "skimage",
    "matplotlib",
    "imageio",
    "triton",
)


def _safe(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except Exception as error:  # a fact that cannot be read is reported, not fatal
        return f"unavailable ({type(error).__name__}: {str(error)[:200]})"


def _nvidia_smi() -> str:
    if shutil.which("nvidia-smi") is None:
        return "no nvidia-smi"
    query = "name,driver_version,memory.total,clocks.max.sm,power.limit"
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip() or out.stderr.strip()


def _memory_gib() -> str:
    with open("/proc/meminfo") as f:
        total = next(line for line in f if line.startswith("MemTotal"))
    return f"{int(total.split()[1]) / 2**20:.1f} GiB"


@functools.cache
def _distributions() -> dict[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


def _package(name: str) -> str:
    """The distribution version of the importable ``name`` and where it was imported from."""
    from importlib import metadata

    module = importlib.import_module(name)
    location = os.path.dirname(getattr(module, "__file__", "") or "?")
    for dist in _distributions().get(name, []):
        try:
            return f"{metadata.version(dist)} ({location})"
        except metadata.PackageNotFoundError:
            continue
    return f"{getattr(module, '__version__', '?')} ({location})"


def _torch_facts() -> dict[str, object]:
    import torch

    facts: dict[str, object] = {
        "torch.version.cuda": torch.version.cuda,
        "cudnn": _safe(torch.backends.cudnn.version),
        "cuda available": torch.cuda.is_available(),
        "torch threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(
            {
                "gpu": props.name,
                "gpu capability": f"{props.major}.{props.minor}",
                "gpu memory": f"{props.total_memory / 2**30:.1f} GiB",
                "gpu multiprocessors": props.multi_processor_count,
                "bf16 matmul 8192^3": _safe(_matmul_tflops),
            }
        )
    return facts


def _matmul_tflops() -> str:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / 10
    return f"{2 * 8192**3 / seconds / 1e12:.0f} TFLOP/s"


def _torchrl_extension() -> str:
    try:
        importlib.import_module("torchrl._torchrl")
    except Exception as error:
        return f"not loaded ({type(error).__name__}): pure-Python fallback"
    return "loaded"


def _render(steps: int) -> dict[str, object]:
    import torch

    import torchrl_psp  # noqa: F401  (headless rendering set-up, before dm_control)
    from torchrl_psp.envs import make_env

    env = make_env("cheetah", "run", distractor="reafferent", segmentation="gt", seed=0)
    env.rollout(2, break_when_any_done=False)
    start = time.perf_counter()
    td = env.rollout(steps, break_when_any_done=False)
    seconds = time.perf_counter() - start
    pixels = td["next", "pixels"].float()
    facts: dict[str, object] = {
        "render: env steps/s (cheetah-run, reafferent, GT)": f"{steps / seconds:.1f}",
        "render: mean pixel": f"{pixels.mean():.1f} (std {pixels.std():.1f})",
        "render: segments per frame": f"{td['next', 'segments'][0].unique().numel()}",
        "render: task-mask fraction": f"{td['next', 'task_mask'].float().mean():.3f}",
        "render: GL renderer": _safe(_gl_renderer),
    }
    del torch
    return facts


def _gl_renderer() -> str:
    from dm_control import suite
    from OpenGL import GL

    physics = suite.load("cheetah", "run").physics
    physics.render(16, 16)
    with physics.contexts.gl.make_current() as ctx:
        vendor = ctx.call(GL.glGetString, GL.GL_VENDOR)
        renderer = ctx.call(GL.glGetString, GL.GL_RENDERER)
    return f"{vendor.decode()} / {renderer.decode()}"


def collect(render_steps: int = 50) -> dict[str, object]:
    """Every fact, as ``name -> value`` (a fact that cannot be read says why)."""
    facts: dict[str, object] = {
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": f"{sys.version.split()[0]} ({sys.executable})",
        "cpus": os.cpu_count(),
        "memory": _safe(_memory_gib),
        "nvidia-smi": _safe(_nvidia_smi),
    }
    for key in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "__EGL_VENDOR_LIBRARY_FILENAMES", "PYTHONPATH"):
        facts[f"env {key}"] = os.environ.get(key, "")
    torch_facts = _safe(_torch_facts)
    facts.update(torch_facts if isinstance(torch_facts, dict) else {"torch": torch_facts})
    for name in PACKAGES:
        facts[f"package {name}"] = _safe(lambda name=name: _package(name))
    facts["torchrl C++ extension"] = _safe(_torchrl_extension)
    if render_steps > 0:
        rendered = _safe(lambda: _render(render_steps))
        facts.update(rendered if isinstance(rendered, dict) else {"render": rendered})
    return facts


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Prints the facts, one per line; returns them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default=None, help="also write the facts to this file")
    parser.add_argument(
        "--render-steps", type=int, default=50, help="steps of the render check (0: none)"
    )
    args = parser.parse_args(argv)
    if args.render_steps < 0:
        parser.error("--render-steps must be >= 0.")
    facts = collect(args.render_steps)
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        print(f"{key:{width}s}  {value}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: str(v) for k, v in facts.items()}, f, indent=1)
    return facts


if __name__ == "__main__":
    main()
