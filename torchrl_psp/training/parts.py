"""The parts of a training run, built from its configuration, and a run directory opened for reading.

:func:`build_run_parts` makes what a run needs (environments, agent, learner objective,
optimiser stepper) from a recipe configuration; :class:`~torchrl_psp.training.DreamerTrainer`
takes them, and so can any other loop. :func:`open_run` loads a finished or running
run directory for reading (its configuration, models and counters, optionally its
replay) without taking its lock, writing into it or starting loggers: the diagnostics
scripts use it. :func:`updates_due` is the replay-ratio arithmetic, in one place.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torchrl.envs import TransformedEnv

from torchrl_psp.modules import CompiledAgent, DreamerV3Agent, compile_agent, make_dreamer_v3
from torchrl_psp.objectives import (
    DreamerV3VariantLoss,
    FiniteUpdateStepper,
    make_optimization_stepper,
    make_variant_loss,
)
from torchrl_psp.training.checkpoint import load_latest_checkpoint
from torchrl_psp.training.config import load_run_config, resolve_device, validate_config
from torchrl_psp.training.env import add_agent_primer, make_training_env
from torchrl_psp.training.execution import learner_execution
from torchrl_psp.training.replay import SequenceReplay
from torchrl_psp.utils.memory import retain_freed_memory
from torchrl_psp.variants import variant_spec

__all__ = [
    "OpenedRun",
    "RunParts",
    "build_run_parts",
    "open_replay",
    "open_run",
    "replay_keys",
    "updates_due",
]


def updates_due(agent_steps: int, replay_cfg: Any, prefill_steps: int) -> int:
    """Learner updates owed after ``agent_steps`` collected steps (the replay ratio).

    Every agent step past the prefill owes ``replay_ratio / (batch_size *
    sequence_length)`` updates: each update replays ``batch_size * sequence_length``
    steps, and ``replay_ratio`` replayed steps are owed per collected step (DreamerV3's
    train ratio). The trainer runs the difference with the updates done so far.

    Examples:
        >>> from types import SimpleNamespace
        >>> replay = SimpleNamespace(replay_ratio=16, batch_size=4, sequence_length=16)
        >>> updates_due(300, replay, prefill_steps=100), updates_due(50, replay, 100)
        (50, 0)
    """
    steps = agent_steps - prefill_steps
    if steps < 0:
        return 0
    return int(
        steps * replay_cfg.replay_ratio // (replay_cfg.batch_size * replay_cfg.sequence_length)
    )


@dataclass
class RunParts:
    """What a run is made of (see :func:`build_run_parts`).

    Attributes:
        cfg: the configuration.
        device: where the agent and the learner live.
        env: the in-process collection environment (with the agent's primer).
        eval_env: the evaluation environment (its own seed).
        worker_fns: one environment factory per collector worker, each with its seed.
        agent: the DreamerV3 agent.
        loss: the variant's learner objective.
        stepper: the optimiser stepper (skips non-finite updates).
        execution: how the update runs (``optim.compile``, see
            :mod:`torchrl_psp.training.execution`): ``eager``, ``regions`` or ``step``.
        compiled: the agent's compiled regions (with ``execution="regions"``).
    """

    cfg: Any
    device: torch.device
    env: TransformedEnv
    eval_env: TransformedEnv
    worker_fns: list[Callable[..., TransformedEnv]]
    agent: DreamerV3Agent
    loss: DreamerV3VariantLoss
    stepper: FiniteUpdateStepper
    execution: str = "eager"
    compiled: CompiledAgent | None = None

    @property
    def compile_step(self) -> bool:
        """Whether the stepper compiles (and captures) the whole update (``execution="step"``)."""
        return self.execution == "step"

    @property
    def policy(self):
        """The acting policy on :attr:`device`, reading CPU environment data."""
        from torchrl_psp.training.evaluation import DevicePolicy

        return DevicePolicy(self.agent.policy, self.device)

    def reseed(self, seed: int) -> None:
        """New episodes from ``seed`` on: the envs and the worker factories."""
        from torchrl_psp.training.env import seed_env

        seed_env(self.env, seed)
        seed_env(self.eval_env, seed + 10_000)
        self.worker_fns = [
            functools.partial(fn, seed=seed + 1 + i) for i, fn in enumerate(self.worker_fns)
        ]


def build_run_parts(cfg: Any, *, with_envs: bool = True) -> RunParts:
    """Builds a run's environments, agent, learner objective and stepper from ``cfg``.

    The configuration is validated first (:func:`~torchrl_psp.training.validate_config`).
    The agent has an image decoder when the variant reconstructs
    (:attr:`~torchrl_psp.variants.VariantSpec.decoder`; DreamerPro's has none).
    The collection env's specs size the agent; ``seed`` seeds the collection env,
    ``seed + 1 + i`` worker ``i`` and ``seed + 10000`` the evaluation env.
    ``with_envs=False`` builds the evaluation env only (enough to size and run the agent).
    """
    validate_config(cfg)
    device = resolve_device(cfg.device)
    env = make_training_env(cfg.env, cfg.segmenter, cfg.seed)
    height, width = env.observation_spec["pixels"].shape[-2:]
    overrides = OmegaConf.to_container(cfg.model.overrides) if cfg.model.overrides else {}
    agent = make_dreamer_v3(
        env.action_spec,
        (3, height, width),
        preset=cfg.model.size,
        device=device,
        decoder=variant_spec(cfg.variant).decoder,
        **overrides,
    )
    primer = agent.primer_spec()
    env = add_agent_primer(env, primer)
    loss = make_variant_loss(
        agent,
        cfg.variant,
        imagination_horizon=cfg.optim.imagination_horizon,
        horizon=cfg.optim.horizon,
        use_reinforce=cfg.optim.actor_gradient == "reinforce",
        entropy_bonus=cfg.optim.entropy_bonus,
        model_loss_kwargs=psp_loss_options(cfg),
    )
    execution = learner_execution(cfg.optim.compile, device.type, cfg.variant)
    compile_step = execution == "step"
    if device.type == "cpu":
        retain_freed_memory()
    compiled = compile_agent(agent) if execution == "regions" else None
    stepper = make_optimization_stepper(
        loss,
        lr=cfg.optim.lr,
        actor_lr=cfg.optim.actor_lr,
        critic_lr=cfg.optim.critic_lr,
        warmup_steps=cfg.optim.warmup_steps,
        max_consecutive_skips=cfg.optim.max_consecutive_skips,
        compile_train_step=compile_step,
        cudagraph=compile_step,
    )
    worker_fns = [
        functools.partial(
            make_training_env, cfg.env, cfg.segmenter, seed=cfg.seed + 1 + i, primer_spec=primer
        )
        for i in range(cfg.collector.num_workers if with_envs else 0)
    ]
    eval_env = make_training_env(cfg.env, cfg.segmenter, cfg.seed + 10_000, primer)
    return RunParts(
        cfg=cfg,
        device=device,
        env=env,
        eval_env=eval_env,
        worker_fns=worker_fns,
        agent=agent,
        loss=loss,
        stepper=stepper,
        execution=execution,
        compiled=compiled,
    )


def psp_loss_options(cfg: Any) -> dict[str, Any]:
    """The ``psp`` section's settings as :func:`~torchrl_psp.objectives.make_model_loss` options.

    ``psp.epsilon`` (``null``: the paper's ``1e3``) becomes ``adversarial_epsilon``; a run
    configuration saved before the section existed gives no options.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> psp_loss_options(OmegaConf.create({"psp": {"epsilon": 30.0}}))
        {'adversarial_epsilon': 30.0}
        >>> psp_loss_options(OmegaConf.create({"psp": {"epsilon": None}}))
        {}
    """
    epsilon = OmegaConf.select(cfg, "psp.epsilon", default=None)
    return {} if epsilon is None else {"adversarial_epsilon": float(epsilon)}


def replay_keys(parts: RunParts) -> list:
    """What the replay stores: the loss's inputs, plus the masks and segments for figures."""
    keys = list(parts.loss.in_keys)
    observed = parts.env.full_observation_spec.keys(True)
    for key in (("next", "task_mask"), ("next", "segments"), ("next", "truncated")):
        if key in observed or key[1] == "truncated":
            keys.append(key)
    return keys


def open_replay(parts: RunParts, directory: str | Path, resume: bool) -> SequenceReplay:
    """The run's on-disk sequence replay in ``directory`` (reloaded with ``resume``)."""
    cfg = parts.cfg.replay
    return SequenceReplay(
        directory,
        cfg.capacity,
        cfg.batch_size,
        cfg.sequence_length,
        keys=replay_keys(parts),
        device=parts.device,
        resume=resume,
    )


@dataclass
class OpenedRun:
    """A run directory opened for reading by :func:`open_run`.

    Attributes:
        run_dir: the directory.
        parts: its parts, with the models of its newest readable checkpoint loaded.
        counters: the checkpoint's counters (env steps, updates, ...), empty without one.
        replay: its replay (reloaded from disk) when asked for, else ``None``.
    """

    run_dir: Path
    parts: RunParts
    counters: dict[str, int]
    replay: SequenceReplay | None = None

    def describe(self, batches: int) -> str:
        """One line naming the run, its variant, its updates and ``batches`` replay batches."""
        replay = self.parts.cfg.replay
        return (
            f"{self.run_dir}: variant {self.parts.cfg.variant}, "
            f"{self.counters.get('updates', 0)} updates, {batches} batches of "
            f"{replay.batch_size}x{replay.sequence_length}"
        )


def open_run(run_dir: str | Path, *, device: str | None = None, replay: bool = False) -> OpenedRun:
    """Opens a finished or running run for reading: its config, models and counters.

    Nothing is written into ``run_dir``, its lock is not taken (a running run stays
    untouched) and no logger starts. The models come from its newest readable checkpoint
    (:func:`~torchrl_psp.training.checkpoint.load_latest_checkpoint`).

    Args:
        run_dir: the run directory (its ``config.yaml`` and ``checkpoint.pt``).
        device: where to load the models; ``None``: the run's own setting.
        replay: also reload the replay from disk (for sampling batches of the run's data).

    Raises:
        ConfigError: no run in ``run_dir``.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    cfg.logger.wandb = "disabled"
    if device is not None:
        cfg.device = device
    parts = build_run_parts(cfg, with_envs=False)
    state = load_latest_checkpoint(run_dir / "checkpoint.pt", map_location=parts.device)
    counters: dict[str, int] = {}
    if state is not None:
        parts.loss.load_state_dict(state["loss"])
        counters = dict(state["counters"])
    opened = OpenedRun(run_dir, parts, counters)
    if replay:
        opened.replay = open_replay(parts, run_dir / "replay", resume=True)
    return opened


def open_run_for_replay_batches(
    description: str,
    argv: Sequence[str] | None = None,
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[argparse.Namespace, OpenedRun]:
    """The command line of the scripts that read a run on batches of its replay.

    Parses ``run_dir [--batches N] [--seed S]`` (defaults 4 and 0) and whatever
    ``add_arguments`` adds to the parser, seeds torch with ``S`` and opens the run with
    its replay (:func:`open_run`).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("run_dir")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    return args, open_run(args.run_dir, replay=True)
