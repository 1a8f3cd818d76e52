"""The reference side of the parity tests: the official DreamerV3 run in its own venv.

``TORCHRL_PSP_REFERENCE_PYTHON`` names the reference interpreter (default: the venv that
``benchmarks/reference/setup.sh`` builds, ``~/.cache/torchrl-psp/dreamerv3-ref``). Tests
that need it are skipped, with one line saying so, when it is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

RUNNER = Path(__file__).with_name("reference_runner.py")
DEFAULT_VENV = Path.home() / ".cache" / "torchrl-psp" / "dreamerv3-ref"


def reference_python() -> Path:
    """The reference interpreter: ``$TORCHRL_PSP_REFERENCE_PYTHON`` or the default venv's."""
    configured = os.environ.get("TORCHRL_PSP_REFERENCE_PYTHON")
    return Path(configured) if configured else DEFAULT_VENV / "bin" / "python"


def run_reference(case: str, arrays: dict[str, np.ndarray], **config) -> dict[str, np.ndarray]:
    """Runs ``case`` of ``reference_runner.py`` in the reference venv; returns its outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(source, config=np.array(json.dumps(config)), **arrays)
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
        done = subprocess.run(
            [str(reference_python()), str(RUNNER), case, str(source), str(target)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"reference case {case!r} failed:\n{done.stderr[-4000:]}")
        with np.load(target) as data:
            return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def reference():
    """:func:`run_reference`, or a skip when the reference venv is absent."""
    python = reference_python()
    if not python.exists():
        pytest.skip(
            f"reference DreamerV3 venv not found at {python} "
            "(run benchmarks/reference/setup.sh or set TORCHRL_PSP_REFERENCE_PYTHON)"
        )
    return run_reference


__all__ = ["reference_python", "run_reference"]
