"""The wheels the GPU machine lacks for ``benchmarks/gpu/suite.sh``, slimmed to travel.

The device machine (see ``docs/gpu.rst``) has Python 3.12, torch 2.11, numpy, scipy,
scikit-image, matplotlib, imageio, lxml, absl-py, pyyaml, tqdm, triton... but none of
TorchRL, TensorDict, MuJoCo, dm_control, segment-anything, Hydra, and it cannot reach a
package registry. This script downloads, here, the wheels of :data:`WHEELS` (Python 3.12,
manylinux x86-64, the versions ``pyproject.toml`` allows), drops from them the files the
suite never opens (:attr:`Wheel.drop`: MuJoCo's ``experimental`` studio, dm_control's
locomotion and dog assets, test files, TorchRL's C++ extension) and writes them to
``.whl/`` (ignored by git), under 64 MiB together, the limit of what travels.

TorchRL's C++ extension (``torchrl/_torchrl*.so``, only the prioritized replay's
segment trees) is built against one torch release and links libtorch's C++ symbols, so
it may not load, or load wrongly, under the machine's torch 2.11: it is dropped, and
TorchRL runs its pure-Python fallback (this project samples with ``SliceSampler``).

Left out because the suite does not import them: wandb (the recipe runs with
``logger.wandb=disabled``), imageio-ffmpeg and av (``eval.video=false``), glfw
(``MUJOCO_GL=egl``), labmaze and dm-tree (dm_control's locomotion), websockets and
etils' extras (MuJoCo's viewer and studio), orjson and importlib-metadata (TensorDict
falls back to ``json`` and ``importlib.metadata``).

Usage::

    python3 benchmarks/gpu/wheels.py                 # downloads and slims into .whl/
    python3 benchmarks/gpu/wheels.py --list          # what it would fetch
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the limit of the working tree that travels to the device machine, in bytes
LIMIT_BYTES = 64 * 1024 * 1024
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
TESTS = ("*_test.py", "*/testing/*", "*/testdata/*", "*/test_assets/*")


@dataclass(frozen=True)
class Wheel:
    """One distribution to carry.

    Attributes:
        name: the distribution name on the package registry.
        version: the exact version (one version of each: two stop the install there).
        drop: ``fnmatch`` patterns of archive paths left out of the carried wheel.
        build: the registry has only a source distribution: build a (pure-Python) wheel.
        why: what needs it.
    """

    name: str
    version: str
    drop: tuple[str, ...] = ()
    build: bool = False
    why: str = ""

    @property
    def requirement(self) -> str:
        """``name==version``."""
        return f"{self.name}=={self.version}"


WHEELS: tuple[Wheel, ...] = (
    Wheel("torchrl", "0.14.1", drop=("torchrl/_torchrl*.so",), why="pyproject: >=0.14.1,<0.15"),
    Wheel("tensordict", "0.14.3", why="torchrl 0.14.1: >=0.14.3,<0.15"),
    Wheel("pyvers", "0.2.3", why="torchrl, tensordict"),
    Wheel("hoptorch", "0.1.4", why="torchrl: the RSSM scan of compiled updates"),
    Wheel(
        "mujoco",
        "3.17.0",
        drop=(
            "mujoco/experimental/*",
            "mujoco/_render_filament*",
            "mujoco/_simulate*",
            "mujoco/viewer.py",
            "mujoco/include/*",
            "mujoco/usd/*",
            *TESTS,
        ),
        why="pyproject: >=3.17,<4 (dm_control 1.0.50: >=3.17.0)",
    ),
    Wheel(
        "dm-control",
        "1.0.50",
        drop=(
            "dm_control/locomotion/*",
            "dm_control/suite/dog_assets/*",
            "dm_control/suite/all_domains.png",
            "dm_control/blender/*",
            *TESTS,
        ),
        why="pyproject: >=1.0.50,<1.1 (suite domains; dog and locomotion left out)",
    ),
    Wheel("dm-env", "1.6", why="dm_control.rl"),
    Wheel("PyOpenGL", "3.1.10", why="dm_control's EGL renderer (MUJOCO_GL=egl)"),
    Wheel("segment-anything", "1.0", why="SAM vit_b, PerSAM"),
    Wheel("hydra-core", "1.3.8", why="recipes/dreamer_psp.py"),
    Wheel("omegaconf", "2.3.1", why="hydra-core, torchrl_psp.training"),
    Wheel(
        "antlr4-python3-runtime",
        "4.9.3",
        build=True,
        why="hydra-core, omegaconf: ==4.9.* (only a source distribution exists)",
    ),
)


@dataclass
class SlimResult:
    """What :func:`slim_wheel` kept and dropped."""

    path: Path
    kept: int = 0
    dropped: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def slim_wheel(source: str | Path, target: str | Path, drop: tuple[str, ...]) -> SlimResult:
    """Copies the wheel ``source`` to ``target`` without the members matching ``drop``.

    The ``.dist-info/RECORD`` is rewritten to list exactly the files kept (their hashes
    are unchanged), so the result is a valid wheel of the same name and version.

    Args:
        source: the wheel file.
        target: the wheel to write (normally the same file name in another folder).
        drop: ``fnmatch`` patterns of archive paths to leave out; ``.dist-info`` files
            are always kept.

    Returns:
        A :class:`SlimResult`.

    Examples:
        >>> import tempfile, zipfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with zipfile.ZipFile(folder / "a-1.0-py3-none-any.whl", "w") as z:
        ...     z.writestr("a/__init__.py", "")
        ...     z.writestr("a/big_test.py", "x" * 100)
        ...     z.writestr("a-1.0.dist-info/RECORD", "a/__init__.py,,\\na/big_test.py,,\\n")
        >>> out = slim_wheel(folder / "a-1.0-py3-none-any.whl", folder / "b.whl", ("*_test.py",))
        >>> out.dropped
        ['a/big_test.py']
        >>> sorted(zipfile.ZipFile(folder / "b.whl").namelist())
        ['a-1.0.dist-info/RECORD', 'a/__init__.py']
    """
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise ValueError(f"slim_wheel writes a new file: target {target} is the source.")
    result = SlimResult(target, bytes_before=source.stat().st_size)
    with zipfile.ZipFile(source) as zin:
        names = zin.namelist()
        records = [n for n in names if n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise ValueError(f"{source.name} is not a wheel: {len(records)} RECORD files.")
        record = records[0]

        def dropped(name: str) -> bool:
            top = name.split("/", 1)[0]
            if top.endswith(".dist-info"):
                return False
            return any(fnmatch.fnmatch(name, pattern) for pattern in drop)

        kept = [n for n in names if not dropped(n)]
        result.dropped = [n for n in names if dropped(n)]
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zout:
            lines = []
            for name in kept:
                if name == record or name.endswith("/"):
                    continue
                info = zin.getinfo(name)
                data = zin.read(name)
                zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                lines.append(f"{name},{_record_hash(data)},{len(data)}")
            lines.append(f"{record},,")
            zout.writestr(record, "\n".join(lines) + "\n")
    result.kept = len(kept)
    result.bytes_after = target.stat().st_size
    return result


def _pip_download(wheel: Wheel, folder: Path) -> Path:
    """The registry's wheel of ``wheel`` (built from the source distribution if need be)."""
    before = set(folder.glob("*.whl"))
    if wheel.build:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-binary", ":all:"]
        command += ["-w", str(folder), wheel.requirement]
    else:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--python-version", "3.12", "--implementation", "cp"]
        for platform in PLATFORMS:
            command += ["--platform", platform]
        command += ["-d", str(folder), wheel.requirement]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    new = sorted(set(folder.glob("*.whl")) - before) or _find(folder, wheel)
    if len(new) != 1:
        raise RuntimeError(f"expected one wheel of {wheel.requirement} in {folder}, found {new}.")
    return new[0]


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _find(folder: Path, wheel: Wheel) -> list[Path]:
    prefix = _normalise(f"{wheel.name}-{wheel.version}-")
    return sorted(p for p in folder.glob("*.whl") if _normalise(p.name).startswith(prefix))


def fetch(dest: str | Path, cache: str | Path, limit: int = LIMIT_BYTES) -> list[SlimResult]:
    """Downloads :data:`WHEELS` into ``cache`` (kept for reruns) and writes them slimmed to
    ``dest`` (emptied of other wheels first); raises if they weigh ``limit`` bytes or more.
    """
    dest, cache = Path(dest), Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    results = []
    for wheel in WHEELS:
        found = _find(cache, wheel)
        source = found[0] if len(found) == 1 else _pip_download(wheel, cache)
        if wheel.drop:
            results.append(slim_wheel(source, dest / source.name, wheel.drop))
        else:
            shutil.copyfile(source, dest / source.name)
            size = source.stat().st_size
            results.append(SlimResult(dest / source.name, bytes_before=size, bytes_after=size))
    total = sum(r.bytes_after for r in results)
    if total >= limit:
        raise RuntimeError(f"the wheels weigh {total / 2**20:.1f} MiB, over {limit / 2**20} MiB.")
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: fetch and slim, then print one line per wheel and the total."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", default=str(ROOT / ".whl"), help="folder of the wheels")
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "torchrl_psp_wheel_cache"),
        help="folder of the unmodified downloads (outside the repository: they do not travel)",
    )
    parser.add_argument("--list", action="store_true", help="print the wheels and exit")
    args = parser.parse_args(argv)
    if args.list:
        for wheel in WHEELS:
            print(f"{wheel.requirement:32s} {wheel.why}")
        return 0
    results = fetch(args.dest, args.cache)
    for r in results:
        note = f" (from {r.bytes_before / 2**20:.1f} MiB, {len(r.dropped)} files left out)"
        print(f"{r.path.name:80s} {r.bytes_after / 2**20:6.2f} MiB" + (note if r.dropped else ""))
    total = sum(r.bytes_after for r in results)
    print(f"{'total':80s} {total / 2**20:6.2f} MiB (limit {LIMIT_BYTES / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
