#!/usr/bin/env bash
# Prepares, here, what benchmarks/gpu/suite.sh needs on the device machine and it lacks:
# the wheels of benchmarks/gpu/wheels.py (Python 3.12, manylinux x86-64, slimmed) in the
# ignored folder .whl/, then (unless SKIP_GL=1) the GL loaders in .gl/ (fetch_gl.sh).
# Together under the 64 MiB that travels. Usage: benchmarks/gpu/fetch_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 benchmarks/gpu/wheels.py "$@"
if [ "${SKIP_GL:-0}" != 1 ]; then
  benchmarks/gpu/fetch_gl.sh
fi
du -cb .whl/*.whl .gl/*.deb 2>/dev/null | tail -1 | awk '{printf "carried in all: %.2f MiB\n", $1 / 1048576}'
