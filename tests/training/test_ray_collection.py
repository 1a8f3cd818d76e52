"""Collection on Ray workers (``collector.backend=ray``) on a local Ray instance.

The recipe starts Ray itself (one CPU per worker, no dashboard, this machine only), as a
user's run does; the weight test starts it through the trainer's collector. Skipped
without the ``distributed`` extra.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict

pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[distributed]"')

from torchrl_psp.training.replay import TRAJ_KEY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "dreamer_psp.py"
CONFIG = ROOT / "recipes" / "config"
RAY = ["collector.backend=ray", "collector.num_workers=2"]
# The smoke preset, reduced to what collection needs: no segmentation, figures or video.
SMOKE = [
    "preset=smoke",
    "variant=dreamer",
    "env.segmentation=none",
    "logger.wandb=disabled",
    "logger.progress_bar=false",
]
WORKER_LINE = re.compile(r"Ray collection worker (\d+): pid (\d+) on \S+ \(MUJOCO_GL=(\S*)\)")


def recipe_command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(RECIPE), f"hydra.run.dir={run_dir}", *SMOKE, *overrides]


def recipe_env() -> dict[str, str]:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)  # a local Ray instance, never a cluster found in the env
    return env


def stored_replay(run_dir: Path) -> tuple[dict, TensorDict]:
    """The replay's saved state and its valid transitions."""
    state = json.loads((run_dir / "replay" / "replay_state.json").read_text())
    storage = TensorDict.load_memmap(run_dir / "replay" / "storage")
    return state, storage[: state["len"]]


def test_smoke_preset_collects_on_two_ray_workers(tmp_path):
    run_dir = tmp_path / "ray"
    result = subprocess.run(
        recipe_command(run_dir, *RAY),
        capture_output=True,
        text=True,
        timeout=600,
        env=recipe_env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Done: 600 env steps, 50 updates" in result.stdout, output[-3000:]
    assert (run_dir / "done").exists()
    # two Ray workers, each its own process, rendering headless (torchrl_psp set MUJOCO_GL)
    workers = {int(w): (int(pid), gl) for w, pid, gl in WORKER_LINE.findall(output)}
    assert sorted(workers) == [0, 1], output[-3000:]
    assert len({pid for pid, _ in workers.values()}) == 2
    assert {gl for _, gl in workers.values()} == {"egl"}
    assert "RayCollector iteration started before weight synchronization" not in output
    # every collected batch holds 25 steps of each worker, with trajectory ids of its own
    state, stored = stored_replay(run_dir)
    assert state["len"] == 300 and state["extra"]["env_steps"] == 600
    ids = stored.get(TRAJ_KEY).view(-1, 2, 25)
    assert bool((ids[:, 0] % 2 == 0).all()) and bool((ids[:, 1] % 2 == 1).all())
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert checkpoint["counters"]["updates"] == 50


def test_policy_weights_reach_the_ray_workers(tmp_path, monkeypatch):
    from torchrl_psp.training import DreamerTrainer

    cfg = OmegaConf.merge(
        OmegaConf.load(CONFIG / "config.yaml"), OmegaConf.load(CONFIG / "preset" / "smoke.yaml")
    )
    cfg.pop("hydra")
    cfg.pop("defaults")
    overrides = [o for o in SMOKE if not o.startswith("preset=")] + RAY
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    trainer = DreamerTrainer(cfg, tmp_path / "run")
    policy = trainer.agent.policy

    def checksum() -> float:
        return float(sum(p.detach().double().sum() for p in policy.parameters()))

    collector = trainer._collector()
    try:
        batch = next(iter(collector))
        assert batch.shape == (2, 25)
        assert collector.policy_checksums() == pytest.approx([checksum()] * 2, rel=1e-6)
        with torch.no_grad():  # what an update does: new weights in the trainer's policy
            for parameter in policy.parameters():
                parameter.add_(0.01)
        assert collector.policy_checksums() != pytest.approx([checksum()] * 2, rel=1e-6)
        collector.update_policy_weights_()
        assert collector.policy_checksums() == pytest.approx([checksum()] * 2, rel=1e-6)
    finally:
        collector.shutdown()
        trainer.logger.close()


def test_killed_ray_worker_stops_the_run_and_keeps_the_replay(tmp_path):
    """SIGKILL one worker mid-run: the run stops with one line naming the backend and the
    worker, saves its state, loses no replay data, and resumes (in-process collection)."""
    run_dir = tmp_path / "killed"
    log_path = tmp_path / "recipe.log"
    overrides = [*RAY, "train.total_env_steps=100000", "eval.every_env_steps=1000000"]
    no_media = ["eval.video=false", "eval.figures=false"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            recipe_command(run_dir, *overrides, *no_media),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=recipe_env(),
        )

    def progress() -> str:
        replay = run_dir / "replay" / "replay_state.json"
        saved = json.loads(replay.read_text())["len"] if replay.exists() else 0
        return f"{saved} transitions saved; log tail:\n{log_path.read_text()[-3000:]}"

    def wait_for(condition, what: str, backstop: float = 300):
        """Polls the run until ``condition()`` holds; fails if the run exits first."""
        start = time.time()
        while not (value := condition()):
            assert process.poll() is None, f"the run exited before {what}: {progress()}"
            assert time.time() - start < backstop, f"no {what} after {backstop} s: {progress()}"
            time.sleep(0.2)
        return value

    try:
        worker = wait_for(
            lambda: {
                int(w): int(pid) for w, pid, _ in WORKER_LINE.findall(log_path.read_text())
            }.get(1),
            "Ray worker 1",
        )
        # Ray names its worker processes ray::<actor class>
        assert "ray::" in Path(f"/proc/{worker}/cmdline").read_text()

        def replay_with_updates() -> bool:
            path = run_dir / "replay" / "replay_state.json"
            return path.exists() and (run_dir / "checkpoint.pt").exists()

        wait_for(replay_with_updates, "replay and checkpoint")  # past the prefill
        before_state, before = stored_replay(run_dir)
        before = before.clone()
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: process.poll() is not None, "exit after the worker was killed", 120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert process.returncode != 0 and not (run_dir / "done").exists(), output[-3000:]
    assert f"Collection backend 'ray': worker 1 (pid {worker}" in output, output[-3000:]
    assert "The replay and a checkpoint were saved" in output
    traceback = output[output.rfind("Traceback") :]
    assert traceback.count('  File "') <= 4, traceback  # not Ray's traceback: the trainer's
    # nothing already in the replay is lost: the saved transitions are still there, unchanged
    after_state, after = stored_replay(run_dir)
    assert after_state["len"] >= before_state["len"] > 0
    assert torch.equal(after[: before_state["len"]]["next", "pixels"], before["next", "pixels"])
    assert torch.equal(after[: before_state["len"]].get(TRAJ_KEY), before.get(TRAJ_KEY))
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert checkpoint["counters"]["agent_steps"] == after_state["len"]

    # the message's advice works: the run resumes from what it saved (here in-process)
    steps = after_state["extra"]["env_steps"] + 100
    result = subprocess.run(
        [
            sys.executable,
            str(RECIPE),
            f"resume={run_dir}",
            "logger.progress_bar=false",
            "collector.num_workers=0",
            f"train.total_env_steps={steps}",
            *no_media,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=recipe_env(),
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert f"Done: {steps} env steps" in result.stdout
    final_state, final = stored_replay(run_dir)
    assert final_state["len"] == after_state["len"] + 50
    assert torch.equal(final[: before_state["len"]]["next", "pixels"], before["next", "pixels"])


def test_worker_death_while_collecting_names_the_worker_and_saves_first():
    """The iteration path (no Ray instance needed): Ray's error becomes one clear error."""
    from ray.exceptions import ActorDiedError

    from torchrl_psp.training.collection import CollectionWorkerDied, RayCollection

    class DeadCollector:
        num_collectors = 2

        def __iter__(self):  # a generator, as RayCollector's iterator is
            error = ActorDiedError()
            error.actor_id = "b"
            raise error
            yield

    saved = []
    collection = object.__new__(RayCollection)
    collection.__dict__.update(
        collector=DeadCollector(),
        on_worker_death=lambda: saved.append(True),
        num_workers=2,
        workers=[{"worker": i, "pid": 100 + i, "host": "node"} for i in range(2)],
        _actor_ids=["a", "b"],
    )
    with pytest.raises(CollectionWorkerDied) as raised:
        next(iter(collection))
    assert saved == [True]
    message = str(raised.value)
    assert message.startswith("Collection backend 'ray': worker 1 (pid 101 on node) died while")
    assert "collecting (ActorDiedError: The actor died unexpectedly" in message
    assert "\n" not in message and raised.value.__cause__ is None
