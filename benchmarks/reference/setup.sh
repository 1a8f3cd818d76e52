#!/usr/bin/env bash
# Build a separate virtual environment with the official DreamerV3 (JAX), the reference
# that docs/parity.rst and tests/parity/ compare our agent against. Never a dependency of
# torchrl-psp: it lives in its own venv and is only ever run as a subprocess.
#
# Usage: benchmarks/reference/setup.sh [--repo PATH] [--python PY] [--with-dmc] [VENV]
#
#   VENV         where to build it (default ~/.cache/torchrl-psp/dreamerv3-ref, or
#                $TORCHRL_PSP_REFERENCE_VENV).
#   --repo PATH  a copy of github.com/danijar/dreamerv3 at commit f8817c4 (for example
#                `git archive f8817c4 | tar -x -C PATH`). Gives configs.yaml, embodied/envs/
#                and requirements.txt, which the PyPI package `dreamer==3.3.1` lacks and
#                which training runs (dreamerv3/main.py) need. Optional: without it the
#                Python files come from the `dreamer==3.3.1` source distribution on PyPI
#                (identical to the repository's at f8817c4), which is all the parity tests
#                import.
#   --python PY  the interpreter to build the venv from (default python3.11).
#   --with-dmc   also install dm_control (for training runs on DMC tasks).
#
# The one CPU patch: embodied/jax/internal.py overwrites XLA_FLAGS, which drops the CPU
# thread flags; the venv's copy is patched to append to them instead.
set -euo pipefail

REPO=""
PY=python3.11
WITH_DMC=0
VENV="${TORCHRL_PSP_REFERENCE_VENV:-$HOME/.cache/torchrl-psp/dreamerv3-ref}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --repo) REPO="$(cd "$2" && pwd)"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --with-dmc) WITH_DMC=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) VENV="$1"; shift ;;
  esac
done

# Versions that ran together (Python 3.11); later `elements` change the checkpoint API.
PINS=(
  "jax[cpu]==0.4.33" "jaxlib==0.4.33" "elements==3.17.0" "ninjax==3.5.1" "portal==3.5.0"
  "granular==0.20.3" "scope==0.4.4" "numpy==1.26.4" "optax==0.2.5" "chex==0.1.90"
  einops jaxtyping tqdm colored_traceback "ruamel.yaml"
)

"$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q "${PINS[@]}"
if [[ "$WITH_DMC" == 1 ]]; then
  # dm_control 1.0.50 breaks on mujoco 4 (MjModel lost flex_vertedge)
  "$VPY" -m pip install -q "dm_control==1.0.50" "mujoco>=3.17,<4" av
fi

SRC="$VENV/src/dreamerv3"
rm -rf "$SRC"
mkdir -p "$SRC"
if [[ -n "$REPO" ]]; then
  [[ -f "$REPO/dreamerv3/configs.yaml" ]] || { echo "$REPO: no dreamerv3/configs.yaml" >&2; exit 1; }
  cp -r "$REPO"/. "$SRC"/
  echo "repository copy $REPO" > "$SRC/SOURCE"
else
  # The sdist cannot be built by pip (its setup.py reads the missing requirements.txt), so
  # take the file itself from the registry's simple index (the page pip reads), check the
  # sha256 the index gives, and unpack it.
  "$VPY" - "$SRC" <<'PYEOF'
import hashlib, io, re, sys, tarfile, urllib.request
dest = sys.argv[1]
index = "https://pypi.org/simple/dreamer/"
page = urllib.request.urlopen(urllib.request.Request(index, headers={"Accept": "text/html"}))
links = re.findall(r'href="([^"]*/dreamer-3\.3\.1\.tar\.gz#sha256=([0-9a-f]{64}))"', page.read().decode())
if not links:
    sys.exit(f"dreamer-3.3.1.tar.gz not found on {index}")
url, digest = links[0]
data = urllib.request.urlopen(url.split("#")[0]).read()
if hashlib.sha256(data).hexdigest() != digest:
    sys.exit("dreamer-3.3.1.tar.gz: sha256 mismatch")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    root = tar.getnames()[0].split("/")[0]
    members = [m for m in tar.getmembers() if m.name.startswith(root + "/")]
    for m in members:
        m.name = m.name[len(root) + 1:]
    tar.extractall(dest, members=[m for m in members if m.name])
with open(f"{dest}/SOURCE", "w") as f:
    f.write(f"PyPI dreamer==3.3.1 sdist dreamer-3.3.1.tar.gz sha256 {digest}\n")
PYEOF
  # embodied/__init__.py imports embodied.envs, which the sdist lacks; in the repository it
  # is a namespace package (no __init__.py): an empty directory stands in for it (no
  # environments: training runs need --repo).
  mkdir -p "$SRC/embodied/envs"
fi

# CPU patch: append to XLA_FLAGS instead of overwriting it.
INTERNAL="$SRC/embodied/jax/internal.py"
"$VPY" - "$INTERNAL" <<'PYEOF'
import sys
path = sys.argv[1]
text = open(path).read()
old = "os.environ['XLA_FLAGS'] = ' '.join(xlaflags)"
new = "os.environ['XLA_FLAGS'] = ' '.join([os.environ.get('XLA_FLAGS', '')] + xlaflags).strip()"
if old in text:
    open(path, "w").write(text.replace(old, new))
elif new not in text:
    sys.exit(f"{path}: XLA_FLAGS line not found; patch not applied")
PYEOF

SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$SRC" > "$SITE/dreamerv3_reference.pth"

JAX_PLATFORMS=cpu "$VPY" -c "
import jax, elements, ninjax, optax
import embodied.jax.nets, embodied.jax.outs, embodied.jax.opt, embodied.jax.utils
import dreamerv3.agent, dreamerv3.rssm
print('reference venv ok: jax', jax.__version__, 'elements', elements.__version__,
      'ninjax', ninjax.__version__, 'optax', optax.__version__)
"
cat "$SRC/SOURCE"
echo "python: $VPY  (export TORCHRL_PSP_REFERENCE_PYTHON=$VPY if not the default path)"
