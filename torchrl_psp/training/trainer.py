"""The training loop of the recipe: collect -> replay -> updates at a replay ratio -> evaluate."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from torchrl_psp.objectives import NonFiniteUpdateError
from torchrl_psp.training.checkpoint import (
    load_latest_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from torchrl_psp.training.config import validate_config
from torchrl_psp.training.evaluation import (
    episode_region_errors,
    episode_video,
    evaluate_policy,
    model_figures,
)
from torchrl_psp.training.lock import lock_run_directory
from torchrl_psp.training.loggers import RunLogger
from torchrl_psp.training.parts import RunParts, build_run_parts, open_replay, updates_due
from torchrl_psp.training.replay import TRAJ_KEY
from torchrl_psp.utils.seeding import seed_everything
from torchrl_psp.variants import variant_spec

__all__ = ["DreamerTrainer"]

log = logging.getLogger(__name__)


def _shown(value: float) -> str:
    """A return for the progress bar: ``-`` until there is one."""
    return "-" if value != value else f"{value:.1f}"


class DreamerTrainer:
    """Trains one variant of pixel DreamerV3 (plain, PSP or SD) on a distracted DMC task.

    Everything the run writes lives in ``run_dir``: ``config.yaml``, ``checkpoint.pt``
    (every ``checkpoint.every_updates`` updates: models, optimiser, counters, RNG
    states; the one before it is kept as ``checkpoint.previous.pt``, the fallback when
    the newest is unreadable), ``replay/`` (the replay storage on disk and, after every collected batch,
    how much of it is valid), ``logs/`` (CSV), ``figures/``, ``videos/`` and, at the
    end, ``done``. ``resume=True`` continues a killed run from its directory: the replay
    data it had saved and the models of its last checkpoint.

    One process owns a run directory: the trainer holds an OS lock on ``<run_dir>/.lock``
    (:func:`~torchrl_psp.training.lock.lock_run_directory`) from construction to the
    process's exit, and a second trainer on the same directory raises
    :class:`~torchrl_psp.training.lock.RunDirectoryBusyError` naming the owner's PID.

    A learner update whose loss or gradient is not finite is skipped (the parameters
    stay), counted (``train/skipped_updates``) and logged with the terms that were not
    finite; after ``optim.max_consecutive_skips`` in a row the run stops with
    :class:`~torchrl_psp.objectives.NonFiniteUpdateError`, its last checkpoint intact.

    The trainer is made of parts (:class:`~torchrl_psp.training.RunParts`: environments,
    agent, learner objective, stepper), built from ``cfg`` by
    :func:`~torchrl_psp.training.build_run_parts` unless given; the trainer adds the run
    directory, the replay, the collector, the logs and the loop.

    Args:
        cfg: the recipe configuration (see ``recipes/config/config.yaml``); with
            ``parts``, theirs is used.
        run_dir: the run directory.
        resume: continue the run found in ``run_dir``.
        parts: the run's parts, built elsewhere (e.g. with a custom loss or stepper).
    """

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: str | Path,
        resume: bool = False,
        *,
        parts: RunParts | None = None,
    ):
        self.run_dir = Path(run_dir)
        self._lock = lock_run_directory(self.run_dir)  # before anything is written there
        if parts is None:
            validate_config(cfg)
            seed_everything(cfg.seed)
            parts = build_run_parts(cfg)
        self.parts = parts
        self.cfg = cfg = parts.cfg
        self.device = parts.device
        self.frame_skip = cfg.env.frame_skip
        self.agent, self.loss, self.stepper = parts.agent, parts.loss, parts.stepper
        self.env, self.eval_env = parts.env, parts.eval_env
        self.policy = parts.policy
        if not resume:
            OmegaConf.save(cfg, self.run_dir / "config.yaml", resolve=True)
        self.replay = open_replay(parts, self.run_dir / "replay", resume=resume)
        self.counters = {
            "env_steps": 0,
            "agent_steps": 0,
            "updates": 0,
            "episodes": 0,
            "skipped_updates": 0,
        }
        self.eval_history: list[tuple[int, float, float]] = []
        self._compiled = not parts.compile_step
        self._first_update_s: float | None = None  # the first update of this process
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
        state = load_latest_checkpoint(self.run_dir / "checkpoint.pt", map_location=self.device)
        if state is not None:
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
        self.parts.reseed(self.cfg.seed + self.counters["agent_steps"])

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
        """The collector of ``cfg.collector`` (see :mod:`torchrl_psp.training.collection`)."""
        from torchrl_psp.training.collection import make_collector

        def save_state() -> None:  # a Ray worker died: keep what the run has
            self._save_replay()
            self.save_checkpoint()

        return make_collector(
            self.env,
            self.parts.worker_fns,
            self.agent.policy,
            self.cfg.collector,
            self.device,
            on_worker_death=save_state,
        )

    def _updates_due(self) -> int:
        due = updates_due(
            self.counters["agent_steps"], self.cfg.replay, self.cfg.collector.prefill_steps
        )
        return due - self.counters["updates"]

    def _update(self, metrics: dict[str, list[float]]) -> None:
        sample = self.replay.sample()
        first = self._first_update_s is None
        start = time.perf_counter()
        if not self._compiled:
            self.stepper.warmup(sample)
            self._compiled = True
        try:
            result = self.stepper.step(None, sample)  # on CPU it raises at the last skip
        except NonFiniteUpdateError:
            self.counters["updates"] += 1
            self._skipped(self.stepper.last_non_finite)
            self._stop_on_non_finite()
            raise
        self.counters["updates"] += 1
        if first:  # compilation (regions, or the whole step) happens here
            self._first_update_s = time.perf_counter() - start
            log.info(
                "First learner update (optim.compile -> %s): %.1f s",
                self.parts.execution,
                self._first_update_s,
            )
            metrics["train/first_update_s"].append(self._first_update_s)
        skipped = bool(result.get("skipped_update", 0.0))
        if self.cfg.replay.refresh_states and not skipped:
            keys = self.loss.tensor_keys
            self.replay.refresh_states(
                sample.get(keys.replay_context), self.replay.last_index, [keys.state, keys.belief]
            )
        if skipped:
            self._skipped(self.stepper.non_finite_terms(result))
            try:
                self.stepper.check_consecutive_skips()
            except NonFiniteUpdateError:
                self._stop_on_non_finite()
                raise
        for key, value in result.items(True, True):
            # a skipped update's losses are not finite: they stay out of the logged means
            if not skipped and isinstance(value, torch.Tensor) and value.numel() == 1:
                name = "/".join(key) if isinstance(key, tuple) else key
                metrics[name].append(float(value))
        if self.counters["updates"] % self.cfg.checkpoint.every_updates == 0:
            self.save_checkpoint()

    def _skipped(self, terms: list[str]) -> None:
        self.counters["skipped_updates"] += 1
        log.warning(
            "Update %d skipped: non-finite %s (%d in a row, %d in all); parameters kept.",
            self.counters["updates"],
            ", ".join(terms),
            self.stepper.consecutive_skips,
            self.counters["skipped_updates"],
        )

    def _stop_on_non_finite(self) -> None:
        """Logs the counters and closes the logs; the last checkpoint stays as it is."""
        self.logger.scalars(
            {
                "train/skipped_updates": self.counters["skipped_updates"],
                "train/updates": self.counters["updates"],
            },
            self.counters["env_steps"],
        )
        self.logger.close()

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self) -> float:
        """Evaluation episodes, the agent / background reconstruction errors
        (:meth:`_region_errors`), figures and video; returns the mean return."""
        cfg, step = self.cfg.eval, self.counters["env_steps"]
        result = evaluate_policy(self.eval_env, self.policy, cfg.episodes, cfg.max_steps)
        self.eval_history.append((step, result.mean, result.std))
        scalars = {
            "eval/return": result.mean,
            "eval/return_std": result.std,
            "eval/episode_length": float(np.mean(result.lengths)),
        }
        scalars.update(self._region_errors(result.first_episode))
        self.logger.scalars(scalars, step)
        if cfg.figures:
            self._figures(result.first_episode, step)
        if cfg.video:
            path = self.run_dir / "videos" / f"eval_{step:08d}.mp4"
            self._write_video(result.first_episode, path)
            self.logger.video("eval/video", path, step)
        return result.mean

    def _region_errors(self, episode) -> dict[str, float]:
        """``eval/recon_error_agent`` and ``eval/recon_error_background``: the world model's
        reconstruction error on the first evaluation episode inside and outside the
        ground-truth task mask (:func:`~torchrl_psp.training.evaluation.episode_region_errors`;
        the mechanistic measure of PSP Fig. 5). Empty unless ``env.segmentation=gt`` (a
        learned mask is no ground truth) and the variant has a decoder; a region without
        pixels is left out."""
        if self.cfg.env.segmentation != "gt":
            return {}
        if not variant_spec(self.cfg.variant).decoder:
            return {}
        errors = episode_region_errors(self.loss.model_loss.world_model, episode, self.device)
        return {
            f"eval/recon_error_{region}": value
            for region, value in errors.items()
            if np.isfinite(value)
        }

    def _write_video(self, episode, path: Path) -> None:
        """The evaluation video of ``episode``: observations beside the model's reconstruction."""
        episode_video(self.loss.model_loss.world_model, episode, self.device, path)

    def _figures(self, episode, step: int) -> None:
        from torchrl_psp.figures import learning_curve_figure, save_figure, save_image

        for name, image in model_figures(
            self.loss.model_loss,
            episode,
            self.device,
            self.loss.in_keys,
            figures=variant_spec(self.cfg.variant).figures,
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
        # A finished run being extended (resume with a larger budget) is unfinished again.
        (self.run_dir / "done").unlink(missing_ok=True)
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
        episode_lengths: dict[int, int] = defaultdict(int)
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
                agent_steps_before = self.counters["agent_steps"] - n
                for i, (traj, reward, done) in enumerate(
                    zip(
                        batch.get(TRAJ_KEY).tolist(),
                        batch["next", "reward"].flatten().tolist(),
                        batch["next", "done"].flatten().tolist(),
                    )
                ):
                    episode_returns[traj] += reward
                    episode_lengths[traj] += 1
                    if done:
                        last_return = episode_returns.pop(traj)
                        self.counters["episodes"] += 1
                        metrics["train/episode_return"].append(last_return)
                        self.logger.episode(  # exact with one worker (time order)
                            env_steps=(agent_steps_before + i + 1) * self.frame_skip,
                            agent_steps=agent_steps_before + i + 1,
                            updates=self.counters["updates"],
                            ret=last_return,
                            length=episode_lengths.pop(traj),
                        )
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
                            "train/skipped_updates": self.counters["skipped_updates"],
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
