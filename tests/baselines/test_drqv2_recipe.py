"""variant=drqv2 of recipes/dreamer_psp.py end to end: run directory, logs, figures,
checkpoint, its column in the study's score table, and (slow) resume to extend."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from torchrl_psp.study.runs import read_run
from torchrl_psp.study.scores import score_table

from ..recipes.test_dreamer_psp import read_scalar, run_recipe


def smoke_run(run_dir):
    result = run_recipe(run_dir, "preset=smoke", "variant=drqv2", "logger.wandb=disabled")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_smoke_run_writes_the_dreamer_run_layout(tmp_path):
    run_dir = tmp_path / "drqv2"
    result = smoke_run(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "variant=drqv2 model=drqv2" in result.stdout
    assert "~50 updates of 8x5" in result.stdout and "Done: 600 env steps" in result.stdout
    config = OmegaConf.load(run_dir / "config.yaml")
    # the drqv2 section decided the replay: windows of n_step + frame_stack - 1 = 5 steps
    assert (config.replay.batch_size, config.replay.sequence_length) == (8, 5)
    assert config.collector.prefill_steps == 200 and not config.replay.refresh_states
    for name in ("loss_critic", "loss_actor", "critic_q1", "exploration_std"):
        values = [v for _, v in read_scalar(run_dir, name)]
        assert values and all(math.isfinite(v) for v in values), name
    assert read_scalar(run_dir, "eval/return")[-1][0] == 600
    assert read_scalar(run_dir, "train/updates")[-1][1] == 50
    for path in ("figures/augmentation_00000600.png", "figures/learning_curve.png", "done"):
        assert (run_dir / path).exists(), path
    assert (run_dir / "videos" / "eval_00000600.mp4").stat().st_size > 0
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert state["counters"]["updates"] == 50
    # the exploration schedule is in the checkpoint: std at agent step 299 of 500,000
    assert float(state["loss"]["loss.exploration.sigma"]) < 1.0

    record = read_run(run_dir)  # the study reads it like any run: a drqv2 column
    table = score_table([record])
    assert table.variants == ["drqv2"] and "drqv2" in table.to_markdown()


@pytest.mark.slow
def test_a_finished_run_is_extended_by_resuming(tmp_path):
    """The DreamerV3 trainer's rule: resume with a larger budget (about 35 s)."""
    run_dir = tmp_path / "drqv2"
    smoke_run(run_dir)
    result = run_recipe(run_dir, f"resume={run_dir}", "train.total_env_steps=700")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming" in result.stdout and "Done: 700 env steps, 75 updates" in result.stdout
    assert read_scalar(run_dir, "eval/return")[-1][0] == 700
