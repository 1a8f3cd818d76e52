"""``variant=drqv2`` of the recipe: DrQ-v2 in the DreamerV3 trainer's run directory and loop."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torchrl.envs import CatFrames, TransformedEnv

from torchrl_psp.baselines.drqv2_config import (
    drqv2_run_config,
    std_schedule_steps,
)
from torchrl_psp.baselines.drqv2_loss import DrQv2Loss
from torchrl_psp.baselines.drqv2_modules import make_drqv2
from torchrl_psp.baselines.drqv2_nstep import DrQv2WindowLoss
from torchrl_psp.baselines.drqv2_stepper import make_drqv2_stepper
from torchrl_psp.baselines.random_shift import RandomShift
from torchrl_psp.training.config import ConfigError, config_errors, resolve_device
from torchrl_psp.training.env import make_training_env
from torchrl_psp.training.parts import RunParts
from torchrl_psp.training.trainer import DreamerTrainer
from torchrl_psp.utils.seeding import seed_everything

__all__ = ["DrQv2Trainer", "build_drqv2_parts", "make_drqv2_env", "validate_drqv2_config"]

#: The frame-stacked observation the policy reads (the replay stores single frames).
STACKED_KEY = "stacked_pixels"


def validate_drqv2_config(cfg: Any) -> None:
    """Raises :class:`~torchrl_psp.training.ConfigError` listing every problem of a DrQ-v2
    run's configuration: the recipe's checks, which include those of the ``drqv2``
    section (:func:`~torchrl_psp.training.config_errors`)."""
    errors = config_errors(cfg)
    if errors:
        raise ConfigError("\n".join(errors))


def make_drqv2_env(
    env_cfg: Any, segmenter_cfg: Any, seed: int, frame_stack: int = 3
) -> TransformedEnv:
    """The recipe's training env (:func:`~torchrl_psp.training.make_training_env`) with the
    last ``frame_stack`` frames stacked along the channels under ``"stacked_pixels"``
    (TorchRL's :class:`~torchrl.envs.CatFrames`; at reset the first frame is repeated)."""
    env = make_training_env(env_cfg, segmenter_cfg, seed)
    env.append_transform(CatFrames(frame_stack, dim=-3, in_keys=["pixels"], out_keys=[STACKED_KEY]))
    return env


def build_drqv2_parts(cfg: Any, *, with_envs: bool = True) -> RunParts:
    """A DrQ-v2 run's environments, agent, objective and stepper (as
    :func:`~torchrl_psp.training.build_run_parts` for DreamerV3).

    ``cfg`` is completed by :func:`~torchrl_psp.baselines.drqv2_run_config` and validated
    (:func:`validate_drqv2_config`). Seeds as for DreamerV3: ``seed`` the collection env,
    ``seed + 1 + i`` worker ``i``, ``seed + 10000`` the evaluation env.
    """
    cfg = drqv2_run_config(cfg)
    validate_drqv2_config(cfg)
    section = cfg.drqv2
    device = resolve_device(cfg.device)
    make = functools.partial(
        make_drqv2_env, cfg.env, cfg.segmenter, frame_stack=section.frame_stack
    )
    env = make(seed=cfg.seed)
    action_spec = env.action_spec
    agent = make_drqv2(
        action_spec,
        tuple(env.observation_spec[STACKED_KEY].shape[-3:]),
        feature_dim=section.feature_dim,
        hidden_dim=section.hidden_dim,
        std_init=section.std_init,
        std_final=section.std_final,
        std_schedule_steps=std_schedule_steps(cfg),
        uniform_steps=cfg.collector.prefill_steps,
        pixels_key=STACKED_KEY,
        device=device,
    )
    loss = DrQv2Loss(
        agent.encoder,
        agent.actor,
        agent.critic,
        agent.exploration,
        action_spec=action_spec.to(device),
        std_clip=section.std_clip,
        gamma=section.discount,
        augmentation=RandomShift(section.augmentation_pad) if section.augmentation_pad else None,
    )
    objective = DrQv2WindowLoss(loss, section.n_step, section.frame_stack, pixels_key="pixels")
    stepper = make_drqv2_stepper(
        objective,
        lr=section.lr,
        tau=section.critic_target_tau,
        max_consecutive_skips=cfg.optim.max_consecutive_skips,
    )
    workers = cfg.collector.num_workers if with_envs else 0
    return RunParts(
        cfg=cfg,
        device=device,
        env=env,
        eval_env=make(seed=cfg.seed + 10_000),
        worker_fns=[functools.partial(make, seed=cfg.seed + 1 + i) for i in range(workers)],
        agent=agent,
        loss=objective,
        stepper=stepper,
    )


class DrQv2Trainer(DreamerTrainer):
    """Trains DrQ-v2 with :class:`~torchrl_psp.training.DreamerTrainer`'s loop and run directory.

    Everything but the learner is the DreamerV3 trainer's: the run directory and its
    lock, ``config.yaml``, the on-disk replay (single frames; each update samples
    windows of ``n_step + frame_stack - 1`` steps, see
    :class:`~torchrl_psp.baselines.DrQv2WindowLoss`), collection, the replay-ratio rule
    (one update every ``drqv2.update_every_steps`` agent steps after
    ``drqv2.seed_frames``, through :func:`~torchrl_psp.baselines.drqv2_run_config`),
    checkpoints and resume, non-finite-update skips, CSV/wandb/TensorBoard logs and the
    evaluation (``eval/return`` of the policy's mean action, the learning curve, a
    video). The evaluation draws what DrQ-v2 has instead of a reconstruction: the
    augmented views of an evaluation frame (``figures/augmentation_<step>.png``), and the
    video shows what the agent sees.

    Before each update the exploration std is set from the agent-step counter
    (:meth:`~torchrl_psp.baselines.DrQv2Exploration.set_step`), so that acting, the
    target-policy noise and a resumed run all read the same schedule.

    Args:
        cfg: the recipe configuration with ``variant=drqv2``.
        run_dir: the run directory.
        resume: continue the run found in ``run_dir``.
        parts: the run's parts (:func:`build_drqv2_parts`), built from ``cfg`` if not given.
    """

    def __init__(self, cfg: Any, run_dir, resume: bool = False, *, parts: RunParts | None = None):
        if parts is None:
            cfg = drqv2_run_config(cfg)
            validate_drqv2_config(cfg)
            seed_everything(cfg.seed)
            parts = build_drqv2_parts(cfg)
        super().__init__(parts.cfg, run_dir, resume=resume, parts=parts)

    def _update(self, metrics: dict[str, list[float]]) -> None:
        self.agent.exploration.set_step(self.counters["agent_steps"])
        super()._update(metrics)

    def _figures(self, episode, step: int) -> None:
        """The learning curve and the augmented views (no world model to draw)."""
        self._drqv2_figures(episode, step)

    def _write_video(self, episode, path) -> None:
        """A video of what the agent sees (no reconstruction)."""
        from torchrl_psp.figures.video import write_video

        write_video(path, episode["next", "pixels"].permute(0, 2, 3, 1).contiguous().numpy())

    def _drqv2_figures(self, episode, step: int) -> None:
        from torchrl_psp.figures import (
            image_grid,
            learning_curve_figure,
            save_figure,
            save_image,
        )

        frame = episode["pixels"][episode.shape[0] // 2].float()  # (3, H, W)
        pad = self.cfg.drqv2.augmentation_pad
        shifted = [RandomShift(pad, in_keys=["x"])._apply_transform(frame) for _ in range(3)]
        views = [frame, *shifted]
        image = image_grid(
            [[v.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0) for v in views]], scale=2
        )
        save_image(self.run_dir / "figures" / f"augmentation_{step:08d}.png", image)
        self.logger.image("figures/augmentation", image, step)
        steps, means = (np.array(v) for v in zip(*[(s, m) for s, m, _ in self.eval_history]))
        figure = learning_curve_figure(
            {self.cfg.variant: [(steps, means)]}, title=self.run_dir.name
        )
        save_figure(figure, self.run_dir / "figures" / "learning_curve.png")
