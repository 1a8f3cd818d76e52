"""``torchrl_psp.study`` is light: ``recipes/compare.py`` reads and starts runs without torch."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import torchrl_psp.study
import torchrl_psp.study.launcher, torchrl_psp.study.summary  # what recipes/compare.py uses
import torchrl_psp.study.studies, torchrl_psp.study.study_runner, torchrl_psp.study.report
heavy = sorted(m for m in ("torch", "torchrl", "tensordict", "matplotlib.pyplot") if m in sys.modules)
print(",".join(heavy))
"""


def test_importing_the_study_leaves_torch_out():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"
