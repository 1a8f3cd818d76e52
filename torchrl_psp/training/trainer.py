"""The training loop of the recipe: collect -> replay -> updates at a replay ratio -> evaluate."""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from torchrl_psp.modules import make_dreamer_v3
from torchrl_psp.objectives import make_optimization_stepper, make_variant_loss
from torchrl_psp.training.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from torchrl_psp.training.config import resolve_device, validate_config
from torchrl_psp.training.env import add_agent_primer, make_training_env, seed_env
from torchrl_psp.training.evaluation import (
    DevicePolicy,
    episode_video,
    evaluate_policy,
    model_figures,
)
from torchrl_psp.training.loggers import RunLogger
from torchrl_psp.training.replay import TRAJ_KEY, SequenceReplay

__all__ = ["DreamerTrainer"]

log = logging.getLogger(__name__)


def _shown(value: float) -> str:
    """A return for the progress bar: ``-`` until there is one."""
    return "-" if value != value else f"{value:.1f}"


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class DreamerTrainer:
    """Trains one variant of pixel DreamerV3 (plain, PSP or SD) on a distracted DMC task.

    Everything the run writes lives in ``run_dir``: ``config.yaml``, ``checkpoint.pt``
    (every ``checkpoint.every_updates`` updates: models, optimiser, counters, RNG
    states), ``replay/`` (the replay storage on disk and, after every collected batch,
    how much of it is valid), ``logs/`` (CSV), ``figures/``, ``videos/`` and, at the
    end, ``done``. ``resume=True`` continues a killed run from its directory: the replay
    data it had saved and the models of its last checkpoint.

    Args:
        cfg: the recipe configuration (see ``recipes/config/config.yaml``).
        run_dir: the run directory.
        resume: continue the run found in ``run_dir``.
    """

    def __init__(self, cfg: DictConfig, run_dir: str | Path, resume: bool = False):
        validate_config(cfg)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(cfg.device)
        self.frame_skip = cfg.env.frame_skip
        _seed_everything(cfg.seed)
        if not resume:
            OmegaConf.save(cfg, self.run_dir / "config.yaml", resolve=True)

        # The collection env of an in-process collector; its specs size the agent.
        env = make_training_env(cfg.env, cfg.segmenter, cfg.seed)
        height, width = env.observation_spec["pixels"].shape[-2:]
        self.agent = make_dreamer_v3(
            env.action_spec,
            (3, height, width),
            preset=cfg.model.size,
            device=self.device,
            **(OmegaConf.to_container(cfg.model.overrides) if cfg.model.overrides else {}),
        )
        primer = self.agent.primer_spec()
        self.env = add_agent_primer(env, primer)
        self.loss = make_variant_loss(
            self.agent,
            cfg.variant,
            imagination_horizon=cfg.optim.imagination_horizon,
            horizon=cfg.optim.horizon,
            use_reinforce=cfg.optim.actor_gradient == "reinforce",
            entropy_bonus=cfg.optim.entropy_bonus,
        )
        compile_step = cfg.optim.compile
        if compile_step == "auto":  # the PSP and SD losses are not tested under compile yet
            compile_step = self.device.type == "cuda" and cfg.variant == "dreamer"
        self.stepper = make_optimization_stepper(
            self.loss,
            lr=cfg.optim.lr,
            actor_lr=cfg.optim.actor_lr,
            critic_lr=cfg.optim.critic_lr,
            warmup_steps=cfg.optim.warmup_steps,
            compile_train_step=bool(compile_step),
            cudagraph=bool(compile_step),
        )
        keys = list(self.loss.in_keys)
        for key in (("next", "task_mask"), ("next", "segments"), ("next", "truncated")):
            if key in env.full_observation_spec.keys(True) or key[1] == "truncated":
                keys.append(key)
        self.replay = SequenceReplay(
            self.run_dir / "replay",
            cfg.replay.capacity,
            cfg.replay.batch_size,
            cfg.replay.sequence_length,
            keys=keys,
            device=self.device,
            resume=resume,
        )
        # One seed per collector worker, so that workers play different episodes.
        self.worker_fns = [
            functools.partial(
                make_training_env, cfg.env, cfg.segmenter, seed=cfg.seed + 1 + i, primer_spec=primer
            )
            for i in range(cfg.collector.num_workers)
        ]
        self.eval_env = make_training_env(cfg.env, cfg.segmenter, cfg.seed + 10_000, primer)
        self.policy = DevicePolicy(self.agent.policy, self.device)
        self.counters = {"env_steps": 0, "agent_steps": 0, "updates": 0, "episodes": 0}
        self.eval_history: list[tuple[int, float, float]] = []
        self._compiled = not compile_step
        if resume:
            self._restore()
        self.logger = RunLogger(
            self.run_dir,
            self.run_dir.name,
            wandb=cfg.logger.wandb,
            tensorboard=cfg.logger.tensorboard,
            project=cfg.logger.project,
            config=None if resume else OmegaConf.to_container(cfg, resolve=True),
        )

    # -- state ---------------------------------------------------------------------------
    def _restore(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        if path.exists():
            state = load_checkpoint(path, map_location=self.device)
            self.loss.load_state_dict(state["loss"])
            self.stepper.optimizer.load_state_dict(state["optimizer"])
            self.counters.update(state["counters"])
            self.eval_history = [tuple(e) for e in state["eval_history"]]
            set_rng_state(state["rng"])
        saved = self.replay.extra  # counters of the replay data, saved after each batch
        for key in ("env_steps", "agent_steps", "episodes"):
            self.counters[key] = max(self.counters[key], saved.get(key, 0))
        self.eval_history = [tuple(e) for e in saved.get("eval_history", self.eval_history)]
        # New episodes, not a replay of the first ones: seeds move with the steps done.
        seed = self.cfg.seed + self.counters["agent_steps"]
        seed_env(self.env, seed)
        seed_env(self.eval_env, seed + 10_000)
        self.worker_fns = [
            functools.partial(fn, seed=seed + 1 + i) for i, fn in enumerate(self.worker_fns)
        ]

    def save_checkpoint(self) -> None:
        save_checkpoint(
            self.run_dir / "checkpoint.pt",
            {
                "loss": self.loss.state_dict(),
                "optimizer": self.stepper.optimizer.state_dict(),
                "counters": dict(self.counters),
                "eval_history": list(self.eval_history),
                "rng": rng_state(),
            },
        )

    def _save_replay(self) -> None:
        self.replay.save(
            extra={
                "env_steps": self.counters["env_steps"],
                "agent_steps": self.counters["agent_steps"],
                "episodes": self.counters["episodes"],
                "eval_history": [list(e) for e in self.eval_history],
            }
        )

    # -- collection ----------------------------------------------------------------------
    def _collector(self):
        from torchrl.collectors import Collector

        cfg = self.cfg.collector
        common = dict(
            frames_per_batch=cfg.frames_per_batch,
            total_frames=-1,
            storing_device="cpu",
            env_device="cpu",
            policy_device=self.device,
        )
        if cfg.num_workers == 0:
            return Collector(self.env, self.agent.policy, **common)
        return Collector(
            self.worker_fns,
            self.agent.policy,
            backend=cfg.backend,
            num_collectors=cfg.num_workers,
            sync=True,
            **common,
        )

    def _updates_due(self) -> int:
        cfg = self.cfg.replay
        steps = self.counters["agent_steps"] - self.cfg.collector.prefill_steps
        if steps < 0:
            return 0
        replayed = cfg.batch_size * cfg.sequence_length
        return int(steps * cfg.replay_ratio // replayed) - self.counters["updates"]

    def _update(self, metrics: dict[str, list[float]]) -> None:
        sample = self.replay.sample()
        if not self._compiled:
            self.stepper.warmup(sample)
            self._compiled = True
        result = self.stepper.step(None, sample)
        self.counters["updates"] += 1
        for key, value in result.items(True, True):
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                name = "/".join(key) if isinstance(key, tuple) else key
                metrics[name].append(float(value))
        if self.counters["updates"] % self.cfg.checkpoint.every_updates == 0:
            self.save_checkpoint()

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self) -> float:
        """Evaluation episodes, figures and video; returns the mean return."""
        cfg, step = self.cfg.eval, self.counters["env_steps"]
        result = evaluate_policy(self.eval_env, self.policy, cfg.episodes, cfg.max_steps)
        self.eval_history.append((step, result.mean, result.std))
        self.logger.scalars(
            {
                "eval/return": result.mean,
                "eval/return_std": result.std,
                "eval/episode_length": float(np.mean(result.lengths)),
            },
            step,
        )
        if cfg.figures:
            self._figures(result.first_episode, step)
        if cfg.video:
            path = self.run_dir / "videos" / f"eval_{step:08d}.mp4"
            episode_video(self.agent.world_model, result.first_episode, self.device, path)
            self.logger.video("eval/video", path, step)
        return result.mean

    def _figures(self, episode, step: int) -> None:
        from torchrl_psp.training.curves import learning_curve_figure, save_figure
        from torchrl_psp.utils import save_image

        for name, image in model_figures(
            self.loss.model_loss, episode, self.device, self.loss.in_keys
        ).items():
            save_image(self.run_dir / "figures" / f"{name}_{step:08d}.png", image)
            self.logger.image(f"figures/{name}", image, step)
        steps, means = (np.array(v) for v in zip(*[(s, m) for s, m, _ in self.eval_history]))
        figure = learning_curve_figure(
            {self.cfg.variant: [(steps, means)]}, title=self.run_dir.name
        )
        save_figure(figure, self.run_dir / "figures" / "learning_curve.png")

    # -- the loop ------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Runs until ``train.total_env_steps``; returns the final counters and evaluation."""
        from tqdm import tqdm

        cfg = self.cfg
        total = cfg.train.total_env_steps
        collector = self._collector()
        bar = tqdm(
            total=total,
            initial=self.counters["env_steps"],
            unit="env step",
            disable=not cfg.logger.progress_bar,
            dynamic_ncols=True,
        )
        metrics: dict[str, list[float]] = defaultdict(list)
        episode_returns: dict[int, float] = defaultdict(float)
        last_return = float("nan")
        postfix: dict[str, Any] = {}
        next_eval = (
            self.counters["env_steps"] // cfg.eval.every_env_steps + 1
        ) * cfg.eval.every_env_steps
        start, steps_at_start, updates_at_start = (
            time.time(),
            self.counters["env_steps"],
            self.counters["updates"],
        )
        last_log = self.counters["updates"]
        try:
            for batch in collector:
                batch = batch.reshape(-1)
                self.replay.extend(batch)
                n = batch.numel()
                self.counters["agent_steps"] += n
                self.counters["env_steps"] += n * self.frame_skip
                for traj, reward, done in zip(
                    batch.get(TRAJ_KEY).tolist(),
                    batch["next", "reward"].flatten().tolist(),
                    batch["next", "done"].flatten().tolist(),
                ):
                    episode_returns[traj] += reward
                    if done:
                        last_return = episode_returns.pop(traj)
                        self.counters["episodes"] += 1
                        metrics["train/episode_return"].append(last_return)
                self._save_replay()
                due = self._updates_due() if self.replay.can_sample() else 0
                if due and self.counters["updates"] == updates_at_start:
                    log.info(
                        "Training starts: first update %.0f s after start, at %d env steps.",
                        time.time() - start,
                        self.counters["env_steps"],
                    )
                for _ in range(due):
                    self._update(metrics)
                if due:
                    collector.update_policy_weights_()
                step = self.counters["env_steps"]
                bar.update(n * self.frame_skip)
                if self.counters["updates"] - last_log >= cfg.logger.every_updates or step >= total:
                    elapsed = max(time.time() - start, 1e-9)
                    values = {k: float(np.mean(v)) for k, v in metrics.items() if v}
                    values.update(
                        {
                            "train/env_steps_per_second": (step - steps_at_start) / elapsed,
                            "train/updates_per_second": (
                                self.counters["updates"] - updates_at_start
                            )
                            / elapsed,
                            "train/updates": self.counters["updates"],
                            "train/episodes": self.counters["episodes"],
                        }
                    )
                    self.logger.scalars(values, step)
                    postfix.update(
                        train_return=_shown(last_return), updates=self.counters["updates"]
                    )
                    bar.set_postfix(postfix)
                    metrics.clear()
                    last_log = self.counters["updates"]
                if step >= next_eval or step >= total:
                    last_eval = self.evaluate()
                    next_eval += cfg.eval.every_env_steps
                    self._save_replay()
                    postfix.update(
                        eval_return=_shown(last_eval),
                        train_return=_shown(last_return),
                        updates=self.counters["updates"],
                    )
                    bar.set_postfix(postfix)
                if step >= total:
                    break
        finally:
            collector.shutdown()
            bar.close()
        self.save_checkpoint()
        self.logger.close()
        (self.run_dir / "done").write_text("finished\n")
        final = self.eval_history[-1] if self.eval_history else (None, float("nan"), float("nan"))
        return {**self.counters, "final_eval_return": final[1], "final_eval_std": final[2]}
