#!/usr/bin/env bash
# before (7e9813e) and after (main), preset=cpu variant=psp, 10 minutes each, one core each, side by side
set -u
# BEFORE: a checkout of 7e9813e (git worktree add /tmp/before 7e9813e); AFTER: this checkout
BEFORE=${BEFORE:-/tmp/before} AFTER=${AFTER:-$(cd "$(dirname "$0")/../.." && pwd)}
export OMP_NUM_THREADS=1 MUJOCO_GL=egl
mkdir -p /tmp/e2e && rm -rf /tmp/e2e/before_run /tmp/e2e/after_run /tmp/e2e/inductor_cold
(cd /tmp/e2e && PYTHONPATH=$BEFORE timeout 600 taskset -c 1 python $BEFORE/recipes/dreamer_psp.py preset=cpu variant=psp logger.wandb=disabled logger.progress_bar=false hydra.run.dir=/tmp/e2e/before_run > /tmp/e2e/before.log 2>&1) &
(cd /tmp/e2e && TORCHINDUCTOR_CACHE_DIR=/tmp/e2e/inductor_cold timeout 600 taskset -c 0 python $AFTER/recipes/dreamer_psp.py preset=cpu variant=psp logger.wandb=disabled logger.progress_bar=false hydra.run.dir=/tmp/e2e/after_run > /tmp/e2e/after.log 2>&1) &
wait
