"""benchmarks/learner_speed.py: one row in process, and the table's ratios by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "learner_speed.py"
_SPEC = importlib.util.spec_from_file_location("learner_speed", _PATH)
learner_speed = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(learner_speed)


def _row(mode: str, variant: str = "dreamer", wall_s: float = 1.0) -> dict:
    return dict(
        preset="small",
        batch=16,
        seq=64,
        threads=1,
        variant=variant,
        mode=mode,
        wall_s=wall_s,
        first_s=2.0,
        flop=100e9,
        peak_gflops=100.0,
    )


def test_table_ratios_by_hand():
    baseline = _row("torchrl", wall_s=3.0)
    compiled = _row("compiled", wall_s=1.5)
    psp = _row("compiled", "psp", wall_s=1.8)
    rows = [baseline, compiled, psp]
    # 100 GFLOP in 1.5 s: 66.7 GFLOP/s; floor 100 GFLOP / 100 GFLOP/s = 1 s: 1.50x;
    # 3.0 / 1.5 = 2.00x faster than today's; DreamerV3 itself: 1.00
    assert learner_speed._line(compiled, rows).split()[-5:] == [
        "100.0",
        "66.7",
        "1.50",
        "2.00",
        "1.00",
    ]
    # PSP: 1.8 s, 1.8 / 1.5 = 1.20x DreamerV3 in the same mode (no torchrl row: nan)
    assert learner_speed._line(psp, rows).split()[-3:] == ["1.80", "nan", "1.20"]
    assert "FAILED exit 1: boom" in learner_speed._line({**compiled, "error": "exit 1: boom"}, rows)


def test_batch_argument():
    assert learner_speed._batch("16x64") == (16, 64)
    with pytest.raises(SystemExit, match="BxT"):
        learner_speed._batch("16-64")


def test_kernel_kinds():
    assert learner_speed._kernel_kind("aten::convolution_backward") == "convolution"
    assert learner_speed._kernel_kind("aten::addmm") == "matmul"
    assert learner_speed._kernel_kind("aten::silu_backward") == "element-wise"
    assert learner_speed._kernel_kind("aten::cat") == "copy / layout"


def test_one_eager_row_in_process():
    result = learner_speed.run_row(
        dict(
            preset="tiny",
            batch=2,
            seq=4,
            threads=1,
            variant="psp",
            mode="eager",
            rounds=1,
            action_dim=2,
            flops=True,
        )
    )
    assert result["wall_s"] > 0 and result["first_s"] > 0
    assert result["flop"] > 1e6  # convolutions and matmuls of a forward and backward pass
