"""Runs that cannot be silently destroyed: non-finite updates, the run lock, damaged checkpoints,
configuration errors and resume edge cases (each case as a user meets it)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from torchrl_psp.objectives import NonFiniteUpdateError
from torchrl_psp.training import (
    ConfigError,
    DamagedCheckpointError,
    DreamerTrainer,
    RunDirectoryBusyError,
    config_errors,
    load_latest_checkpoint,
    lock_run_directory,
    resume_config,
    save_checkpoint,
    validate_config,
)
from torchrl_psp.training.checkpoint import previous_checkpoint_path
from torchrl_psp.training.lock import RunDirectoryLock

from .test_recipe_parts import config

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "dreamer_psp.py"
FAST = {
    "variant": "dreamer",
    "env.segmentation": "none",
    "env.domain": "cartpole",
    "env.task": "balance",
    "logger.wandb": "disabled",
    "logger.progress_bar": "false",
    "eval.video": "false",
    "eval.figures": "false",
}


def _recipe(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RECIPE), *args], capture_output=True, text=True, timeout=timeout
    )


# -- 1. non-finite updates through the trainer ---------------------------------------------


def test_trainer_skips_non_finite_updates_then_stops_with_the_checkpoint_intact(tmp_path, caplog):
    # the batches below do not come from the replay: nothing to refresh there
    cfg = config(**FAST, **{"optim.max_consecutive_skips": 3, "replay.refresh_states": False})
    trainer = DreamerTrainer(cfg, tmp_path / "run")
    good = _replay_batch(trainer)
    trainer.replay.sample = lambda: good.clone()
    metrics = defaultdict(list)
    trainer._update(metrics)  # one good update, then a checkpoint of it
    trainer.save_checkpoint()
    checkpoint = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    before = [p.detach().clone() for p in trainer.loss.parameters()]

    bad = good.clone()
    bad["next", "reward"][0, 3] = float("nan")
    trainer.replay.sample = lambda: bad.clone()
    with caplog.at_level(logging.WARNING):
        trainer._update(metrics)
        trainer._update(metrics)
    assert trainer.counters["skipped_updates"] == 2 and trainer.counters["updates"] == 3
    assert "skipped: non-finite loss_model_reward" in caplog.text
    assert all(torch.equal(p, q) for p, q in zip(trainer.loss.parameters(), before))
    assert all(torch.isfinite(p).all() for p in trainer.loss.parameters())
    assert not any(v != v for v in metrics["loss_model_reward"])  # skipped losses not logged

    with pytest.raises(NonFiniteUpdateError, match="3 consecutive learner updates"):
        trainer._update(metrics)
    assert trainer.counters["skipped_updates"] == 3
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == checkpoint
    logged = (tmp_path / "run" / "logs" / "scalars" / "train" / "skipped_updates.csv").read_text()
    assert logged.strip().endswith(",3.0")


def _replay_batch(trainer):
    """A synthetic batch with the keys and shapes the trainer's replay gives."""
    from torchrl_psp.modules import synthetic_replay_sample

    cfg = trainer.cfg.replay
    sample = synthetic_replay_sample(trainer.agent, cfg.batch_size, cfg.sequence_length)
    return sample.select(*trainer.stepper.loss_module.in_keys, strict=False)


# -- 2. one process per run directory ------------------------------------------------------

_HOLD = """
import sys
from torchrl_psp.training.lock import lock_run_directory
lock_run_directory(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def _holder(run_dir: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "locked"  # waits on the holder's own state
    return process


def test_second_process_is_refused_and_a_killed_owner_leaves_no_lock(tmp_path):
    run_dir = tmp_path / "run"
    holder = _holder(run_dir)
    try:
        with pytest.raises(
            RunDirectoryBusyError, match=rf"in use by another process \(PID {holder.pid}\)"
        ):
            RunDirectoryLock(run_dir)
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs
        holder.wait()
    lock = RunDirectoryLock(run_dir)  # the OS released it
    assert (run_dir / ".lock").read_text().strip() == str(os.getpid())
    lock.release()
    assert lock_run_directory(run_dir) is lock_run_directory(run_dir)
    lock_run_directory(run_dir).release()


def test_recipe_resuming_a_run_in_use_exits_at_once_naming_the_owner(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    OmegaConf.save(config(**FAST), run_dir / "config.yaml")
    holder = _holder(run_dir)
    try:
        result = _recipe(f"hydra.run.dir={run_dir}", f"resume={run_dir}")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"in use by another process (PID {holder.pid})" in result.stderr
    assert str(run_dir) in result.stderr
    assert not (run_dir / ".hydra").exists()  # hydra wrote nothing into the owner's run


# -- 3. configuration errors: all of them, before anything is built ------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"replay.batch_size": 0}, "replay.batch_size must be a positive integer"),
        ({"replay.sequence_length": 0}, "replay.sequence_length must be a positive integer"),
        ({"env.frame_skip": 0}, "env.frame_skip must be a positive integer"),
        ({"eval.every_env_steps": 0}, "eval.every_env_steps must be a positive integer"),
        ({"env.image_size": 0}, "env.image_size must be a positive integer"),
        ({"env.image_size": 63}, "env.image_size=63 must be a multiple of 16"),
        ({"env.domain": "cheetahh"}, "env.domain='cheetahh' is not a DeepMind Control domain"),
        ({"env.task": "fly"}, "env.task='fly' is not a task of env.domain=cheetah"),
        ({"replay.batch_size": "abc"}, "replay.batch_size must be a positive integer, got 'abc'"),
        ({"optim.max_consecutive_skips": 0}, "optim.max_consecutive_skips"),
        ({"logger.wandb": "cloud"}, "logger.wandb must be offline, online or disabled"),
        ({"env.compositing": "blend"}, "env.compositing must be one of"),
        (
            {"env.distractor": "none", "env.compositing": "skybox"},
            "distractor='none' does not use: compositing='skybox'",
        ),
        ({"env.grayscale": True}, "grayscale=True (used by distractor 'video')"),
        ({"optim.compile": "fast"}, "optim.compile must be one of auto, eager, regions, step"),
        ({"optim.compile": "step"}, "optim.compile=step compiles and captures the update"),
    ],
)
def test_each_bad_setting_is_named(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config(config(**overrides))


def test_every_bad_setting_is_listed_not_only_the_first():
    errors = config_errors(
        config(**{"replay.batch_size": 0, "env.frame_skip": 0, "env.domain": "cheetahh"})
    )
    assert len(errors) == 3, errors


def test_recipe_exits_2_with_one_line_per_bad_setting_before_building(tmp_path):
    run_dir = tmp_path / "bad"
    result = _recipe(
        f"hydra.run.dir={run_dir}",
        "preset=smoke",
        "replay.batch_size=0",
        "replay.sequence_length=0",
        "env.frame_skip=0",
        "eval.every_env_steps=0",
        "env.image_size=63",
        "env.domain=cheetahh",
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(lines) == 6, result.stderr
    assert "Traceback" not in result.stderr and "ZeroDivisionError" not in result.stderr
    assert not (run_dir / "replay").exists() and not (run_dir / "config.yaml").exists()


# -- 4. resume edge cases --------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.randn(1000)})
    save_checkpoint(path, {"step": 2, "weights": torch.randn(1000)})
    _truncate(path)  # a real truncated file, as a full disk or a kill mid-copy leaves it
    with pytest.warns(UserWarning, match=r"checkpoint\.pt' .* is damaged .* previous checkpoint"):
        assert load_latest_checkpoint(path)["step"] == 1
    _truncate(previous_checkpoint_path(path))
    with pytest.raises(DamagedCheckpointError, match="No readable checkpoint is left"):
        load_latest_checkpoint(path)
    assert load_latest_checkpoint(tmp_path / "none.pt") is None


def test_trainer_resumes_from_the_previous_checkpoint_when_the_newest_is_damaged(tmp_path):
    cfg = config(**FAST)
    run_dir = tmp_path / "run"
    trainer = DreamerTrainer(cfg, run_dir)
    trainer.counters["updates"] = 10
    trainer.save_checkpoint()
    trainer.counters["updates"] = 20
    trainer.save_checkpoint()
    trainer._lock.release()  # as if its process had ended
    _truncate(run_dir / "checkpoint.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = DreamerTrainer(cfg, run_dir, resume=True)
    assert resumed.counters["updates"] == 10
    assert any("is damaged" in str(w.message) for w in caught)


def test_finished_run_is_not_resumed_unless_the_budget_is_raised(tmp_path):
    OmegaConf.save(config(**FAST), tmp_path / "config.yaml")  # 600 env steps
    (tmp_path / "done").write_text("finished\n")
    with pytest.raises(ConfigError, match=r"has finished \(600 env steps.*train.total_env_steps=N"):
        resume_config(tmp_path, [])
    with pytest.raises(ConfigError, match="has finished"):
        resume_config(tmp_path, ["train.total_env_steps=600"])
    assert resume_config(tmp_path, ["train.total_env_steps=800"]).train.total_env_steps == 800
    with pytest.raises(ConfigError, match="Cannot change"):
        resume_config(tmp_path, ["variant=psp"])


def test_recipe_refuses_a_finished_run_and_a_path_that_is_no_run(tmp_path):
    run_dir = tmp_path / "finished"
    run_dir.mkdir()
    OmegaConf.save(config(**FAST), run_dir / "config.yaml")
    (run_dir / "done").write_text("finished\n")
    result = _recipe(f"hydra.run.dir={run_dir}", f"resume={run_dir}")
    assert result.returncode == 2 and "has finished" in result.stderr, result.stderr[-2000:]

    missing = tmp_path / "not_a_run"
    result = _recipe(f"resume={missing}")
    assert result.returncode == 2 and "no run there" in result.stderr, result.stderr[-2000:]
    assert not missing.exists()  # no folder, no .hydra/, no log file
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _recipe(f"resume={empty}")
    assert result.returncode == 2 and list(empty.iterdir()) == []


def test_extending_a_finished_run_trains_to_the_new_budget(tmp_path):
    run_dir = tmp_path / "run"
    common = ["preset=smoke", *(f"{k}={v}" for k, v in FAST.items())]
    first = _recipe(f"hydra.run.dir={run_dir}", *common, "train.total_env_steps=300", timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (run_dir / "done").exists()
    extended = _recipe(
        f"hydra.run.dir={run_dir}",
        f"resume={run_dir}",
        "train.total_env_steps=400",
        "logger.progress_bar=false",
        timeout=600,
    )
    assert extended.returncode == 0, extended.stderr[-3000:]
    assert "Done: 400 env steps" in extended.stdout
    assert (run_dir / "done").exists()
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["counters"]["env_steps"] == 400


def test_ray_backend_without_ray_is_a_configuration_error(monkeypatch):
    from torchrl_psp.training import config as config_module

    monkeypatch.setattr(config_module, "find_spec", lambda name: None)
    errors = config_errors(config(**{"collector.backend": "ray", "collector.num_workers": 2}))
    assert any('pip install -e ".[distributed]"' in e for e in errors), errors


def test_updates_refresh_the_stored_start_states_unless_skipped(tmp_path):
    trainer = DreamerTrainer(config(**FAST), tmp_path / "run")
    data = _replay_batch(trainer).reshape(-1)
    data.set(("collector", "traj_ids"), torch.zeros(data.shape[0], dtype=torch.int64))
    data.set(("next", "truncated"), torch.zeros(data.shape[0], 1, dtype=torch.bool))
    trainer.replay.extend(data)
    stored = trainer.replay.buffer.storage._storage
    before = stored.get("belief")[: data.shape[0]].clone()
    trainer._update(defaultdict(list))
    index = trainer.replay.last_index
    after = stored.get("belief")[: data.shape[0]]
    assert not torch.equal(after[index[:, 1:]], before[index[:, 1:]])  # fresher posteriors
    assert torch.isfinite(after).all()
