#!/usr/bin/env bash
# The project's GPU measurements in one command (docs/gpu.rst). On the device machine:
#   benchmarks/gpu/suite.sh            # tables into $OUT (or the folder given first)
# It unpacks the GL loaders of .gl/ (benchmarks/gpu/fetch_gl.sh) into / (as root),
# installs the wheels of .whl/ (benchmarks/gpu/fetch_wheels.sh) into /tmp/site, then
# runs benchmarks/gpu/suite.py (steps a-d, 9 minutes in all). With --dry-run (the
# tests) nothing is unpacked or installed, and the steps run on the CPU at tiny sizes.
set -u
start=$SECONDS
cd "$(dirname "$0")/../.."
dry=0
for arg in "$@"; do [ "$arg" = --dry-run ] && dry=1; done
out=${OUT:-${TMPDIR:-/tmp}/gpu_suite_out}
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then out=$1; shift; fi
mkdir -p "$out"
setup="$out/setup.txt"
: >"$setup"
if [ $dry = 0 ]; then
  # the device machine's recipe for headless EGL (its README): unpack the loaders into /
  if ls .gl/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    echo "unpacked $(ls .gl/*.deb | wc -l) GL packages from .gl/" >>"$setup"
  fi
  vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f $vendor ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
  fi
  if ls .whl/*.whl >/dev/null 2>&1; then
    if timeout 120 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target /tmp/site .whl/*.whl >>"$setup" 2>&1; then
      export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
      echo "installed $(ls .whl/*.whl | wc -l) wheels from .whl/ into /tmp/site" >>"$setup"
    else
      echo "pip install of .whl/ FAILED (see above); running with what is installed" >>"$setup"
    fi
  fi
fi
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
echo "setup took $((SECONDS - start)) s" >>"$setup"
exec python3 benchmarks/gpu/suite.py "$out" --elapsed $((SECONDS - start)) "$@"
