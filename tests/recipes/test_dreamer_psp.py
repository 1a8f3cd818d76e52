"""End-to-end tests of recipes/dreamer_psp.py, run as a user runs it (a subprocess)."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "dreamer_psp.py"


def run_recipe(run_dir: Path, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        str(RECIPE),
        f"hydra.run.dir={run_dir}",
        "logger.progress_bar=false",
        *overrides,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def wait_for_run(
    process: subprocess.Popen,
    reached,
    progress,
    stall_timeout: float = 900,
) -> None:
    """Waits until ``reached()`` holds, failing on the run's own state, not on a deadline:
    when the process exits (with its stderr), or when ``progress()`` has not changed for
    ``stall_timeout`` seconds (a hung run; a slow, busy machine still makes progress)."""
    last, since = progress(), time.time()
    while not reached():
        if process.poll() is not None:
            error = process.stderr.read() if process.stderr else b""
            if isinstance(error, bytes):
                error = error.decode(errors="replace")
            pytest.fail(f"the run exited with {process.returncode}: {error[-3000:]}")
        now = progress()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since > stall_timeout:
            pytest.fail(f"the run made no progress for {stall_timeout:.0f} s (stuck at {now})")
        time.sleep(0.2)


def read_scalar(run_dir: Path, name: str) -> list[tuple[int, float]]:
    path = run_dir / "logs" / "scalars" / f"{name}.csv"
    rows = [line.split(",") for line in path.read_text().splitlines() if line]
    return [(int(step), float(value)) for step, value in rows]


def run_diagnostics(
    run_dir: Path, script: str = "world_model_diagnostics.py", *args: str
) -> subprocess.CompletedProcess:
    """A ``benchmarks/`` script that reads a finished run (default: the world-model
    diagnostics, 40 steps).

    The test waits on the process's exit; the timeout only guards against a hang (it
    takes seconds alone on a core), so a busy machine does not fail it.
    """
    args = args or (("--steps", "40") if script == "world_model_diagnostics.py" else ())
    diagnostics = RECIPE.parents[1] / "benchmarks" / script
    return subprocess.run(
        [sys.executable, str(diagnostics), str(run_dir), *args],
        capture_output=True,
        text=True,
        timeout=1800,
    )


def table_values(stdout: str) -> dict[str, list[float]]:
    """The numeric cells of each row of a markdown table printed by a benchmark."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 1:
            try:
                rows[cells[0]] = [float(c) for c in cells[1:]]
            except ValueError:
                continue  # the header and the rule
    return rows


@pytest.mark.parametrize("variant", ["psp", "sd_gt"])
def test_smoke_preset_trains_evaluates_and_writes_everything(tmp_path, variant):
    run_dir = tmp_path / variant
    # psp runs with the default logging (CSV + wandb offline), sd_gt with CSV only
    wandb = [] if variant == "psp" else ["logger.wandb=disabled"]
    result = run_recipe(run_dir, "preset=smoke", f"variant={variant}", *wandb)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "preset=smoke" in result.stdout and "Done: 600 env steps" in result.stdout
    assert (run_dir / "done").exists()
    if variant == "psp":  # offline wandb run written locally, no account needed
        assert list((run_dir / "wandb").glob("offline-run-*"))
    config = OmegaConf.load(run_dir / "config.yaml")
    assert config.variant == variant and config.env.domain == "cheetah"
    # every loss term was logged and is finite
    scalars = run_dir / "logs" / "scalars"
    losses = sorted(p.stem for p in scalars.glob("loss_*.csv"))
    expected = {"loss_model_reco", "loss_model_reward", "loss_actor", "loss_value"}
    assert expected <= set(losses)
    for name in losses:
        values = [v for _, v in read_scalar(run_dir, name)]
        assert values and all(math.isfinite(v) for v in values), name
    if variant == "psp":
        assert {"weight_min", "weight_max", "weight_entropy", "loss_model_adv"} <= {
            p.stem for p in scalars.glob("*.csv")
        }
    # evaluation, updates, figures, video, checkpoint
    assert read_scalar(run_dir, "eval/return")[-1][0] == 600
    assert read_scalar(run_dir, "train/updates")[-1][1] == 50
    assert (run_dir / "figures" / "reconstruction_00000600.png").exists()
    assert (run_dir / "figures" / "learning_curve.png").exists()
    if variant == "sd_gt":
        assert (run_dir / "figures" / "sd_masks_00000600.png").exists()
    assert (run_dir / "videos" / "eval_00000600.mp4").stat().st_size > 0
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert state["counters"]["updates"] == 50 and state["counters"]["env_steps"] == 600
    if variant == "psp":  # the replay-batch diagnostics read its checkpoint and replay
        result = run_diagnostics(run_dir, "saliency_weight_share.py", "--batches", "1")
        assert result.returncode == 0, result.stderr[-3000:]
        rows = table_values(result.stdout)
        fraction = rows["agent pixels (fraction of the image)"]
        assert 0 < fraction[0] < 1 and fraction[0] == fraction[1]
        assert all(0 <= share <= 1 for share in rows["agent's share of the weights"])
        result = run_diagnostics(run_dir, "encoder_gradient_share.py", "--batches", "1")
        assert result.returncode == 0, result.stderr[-3000:]
        rows = table_values(result.stdout)
        assert {"loss_model_reco", "loss_model_adv"} <= set(rows)
        assert math.isclose(sum(values[1] for values in rows.values()), 1.0, abs_tol=0.01)
    if variant == "sd_gt":  # the diagnostics of a finished run read its checkpoint
        result = run_diagnostics(run_dir)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "'updates': 50" in result.stdout
        errors = [
            float(line.split(":")[-1])
            for line in result.stdout.splitlines()
            if "image error" in line
        ]
        assert len(errors) == 3 and all(math.isfinite(e) for e in errors)
        # the policy's salience of a variant without saliency weights, mask from task_mask
        result = run_diagnostics(run_dir, "saliency_weight_share.py", "--batches", "1")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "does not train with PSP's weights" in result.stdout
        rows = table_values(result.stdout)
        assert not any(label.startswith("agent's share of the reconstruction") for label in rows)
        ratios = rows["salience per pixel, agent / background, raw"]
        assert ratios[0] > 0 and ratios[0] == ratios[1]


def test_killed_run_resumes_where_it_stopped(tmp_path):
    run_dir = tmp_path / "killed"
    overrides = [
        "preset=smoke",
        "variant=dreamer",
        "env.segmentation=none",
        "logger.wandb=disabled",
        "train.total_env_steps=3000",
        "eval.every_env_steps=100000",
        "eval.video=false",
        "checkpoint.every_updates=5",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(RECIPE), f"hydra.run.dir={run_dir}", "logger.progress_bar=false"]
    process = subprocess.Popen(
        [*command, *overrides], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    replay_state = run_dir / "replay" / "replay_state.json"

    def env_steps() -> int:
        try:
            return json.loads(replay_state.read_text())["extra"]["env_steps"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return 0

    try:
        wait_for_run(
            process,
            lambda: (run_dir / "checkpoint.pt").exists() and env_steps() >= 1000,
            progress=env_steps,
        )
    finally:
        process.send_signal(signal.SIGKILL)  # a real kill: no clean-up code runs
        process.wait()
    assert not (run_dir / "done").exists()
    saved = json.loads(replay_state.read_text())
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    saved_len = saved["len"]
    from tensordict import TensorDict

    stored = TensorDict.load_memmap(run_dir / "replay" / "storage")
    before = stored[:saved_len]["next", "pixels"].clone()
    updates_at_kill = checkpoint["counters"]["updates"]
    assert updates_at_kill % 5 == 0 and updates_at_kill >= 5

    result = run_recipe(run_dir, f"resume={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming" in result.stdout and "Done: 3000 env steps" in result.stdout
    final = torch.load(run_dir / "checkpoint.pt", weights_only=False)["counters"]
    assert final["env_steps"] == 3000
    after = json.loads(replay_state.read_text())
    # the replay data saved before the kill is intact and the new data follows it
    assert after["len"] == saved_len + (3000 - saved["extra"]["env_steps"]) // 2
    stored = TensorDict.load_memmap(run_dir / "replay" / "storage")
    assert torch.equal(stored[:saved_len]["next", "pixels"], before)
    ids = stored[: after["len"]]["collector", "traj_ids"]
    assert ids[saved_len:].min() > ids[:saved_len].max()  # new episodes never merge with old ones
    # updates continued from the checkpoint and caught up with the replay ratio
    updates = [v for _, v in read_scalar(run_dir, "train/updates")]
    assert updates[-1] == final["updates"] == (1500 - 100) * 16 // 64


def test_configuration_errors_fail_before_training(tmp_path):
    cases = {
        "variant=plain": "Unknown variant 'plain'",
        "variant=sd_approx": "needs a learned task-mask segmenter",
        "env.segmentation=sam": "needs a Segment Anything checkpoint",
        "env.segmentation=none": "aggregates saliency within segments",
    }
    for override, message in cases.items():
        run_dir = tmp_path / override.replace("=", "_")
        result = run_recipe(run_dir, "preset=smoke", override)
        assert result.returncode == 2, (override, result.stderr[-2000:])
        assert message in result.stderr, (override, result.stderr[-2000:])
        # it stopped at the configuration check: nothing was collected, trained or saved
        # (the run's own state, not a wall-clock limit, so a busy machine cannot fail it)
        assert "Configuration error" in result.stderr, (override, result.stderr[-2000:])
        assert not (run_dir / "replay").exists()
        assert not (run_dir / "checkpoint.pt").exists()
        assert "Done:" not in result.stdout


def test_collection_with_worker_processes(tmp_path):
    """Two collector workers, each with its env and GT segmentation, seeded differently."""
    run_dir = tmp_path / "workers"
    result = run_recipe(
        run_dir,
        "preset=smoke",
        "collector.num_workers=2",
        "logger.wandb=disabled",
        "eval.video=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from tensordict import TensorDict

    length = json.loads((run_dir / "replay" / "replay_state.json").read_text())["len"]
    stored = TensorDict.load_memmap(run_dir / "replay" / "storage")[:length]
    ids = stored["collector", "traj_ids"]
    assert set(ids.tolist()) == {0, 1}
    first, second = stored[ids == 0], stored[ids == 1]
    assert first["next", "segments"].shape[1:] == (64, 64)
    # different seeds: the two workers do not see the same frames
    assert not torch.equal(first["next", "pixels"][:10], second["next", "pixels"][:10])
