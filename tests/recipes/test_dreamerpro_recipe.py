"""variant=dreamerpro through recipes/dreamer_psp.py, as a user runs it (a short smoke run)."""

import math

import torch

from .test_dreamer_psp import read_scalar, run_diagnostics, run_recipe


def test_dreamerpro_smoke_run_trains_without_reconstruction(tmp_path):
    run_dir = tmp_path / "dreamerpro"
    result = run_recipe(
        run_dir,
        "preset=smoke",
        "variant=dreamerpro",
        "env.segmentation=none",
        "logger.wandb=disabled",
        "train.total_env_steps=300",
        "eval.every_env_steps=300",
        "eval.max_steps=20",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done: 300 env steps" in result.stdout and (run_dir / "done").exists()
    scalars = run_dir / "logs" / "scalars"
    losses = {p.stem for p in scalars.glob("loss_*.csv")}
    assert {"loss_model_swav", "loss_model_temporal", "loss_model_norm"} <= losses
    assert {"loss_model_reward", "loss_model_dynamic", "loss_actor", "loss_value"} <= losses
    assert "loss_model_reco" not in losses
    for name in losses | {"prototype_usage", "temporal_agreement"}:
        values = [v for _, v in read_scalar(run_dir, name)]
        assert values and all(math.isfinite(v) for v in values), name
    # evaluation: the learning curve and the video, no reconstruction figure (no decoder)
    assert read_scalar(run_dir, "eval/return")[-1][0] == 300
    assert (run_dir / "figures" / "learning_curve.png").exists()
    assert not list((run_dir / "figures").glob("reconstruction_*.png"))
    assert (run_dir / "videos" / "eval_00000300.mp4").stat().st_size > 0
    # the momentum embedder and the prototype-freeze counter are saved with the loss
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    updates = state["counters"]["updates"]
    assert updates > 0 and int(state["loss"]["model_loss.updates"]) == updates
    assert any(key.startswith("model_loss.momentum_params.") for key in state["loss"])
    # the world-model diagnostics read a decoder-free checkpoint and skip the image error
    result = run_diagnostics(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "image error: not measured" in result.stdout
    assert "reward, " in result.stdout
    # the salience diagnostic needs the ground-truth mask, and says so
    result = run_diagnostics(run_dir, "saliency_weight_share.py", "--batches", "1")
    assert result.returncode != 0 and "env.segmentation='none'" in result.stderr
