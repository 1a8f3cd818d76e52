"""DrQ-v2's hyper-parameters in the recipe: the ``drqv2`` section, its checks and what it sets.

The values of ``recipes/config/config.yaml``'s ``drqv2`` section are the paper's
(Yarats et al. 2021, the hyper-parameter table of Appendix B; the official configs
``cfgs/config.yaml`` and ``cfgs/task/{easy,medium,hard}.yaml``). For ``variant=drqv2``
:func:`drqv2_run_config` derives the run's replay and schedule from them, so that the
DreamerV3 trainer's one replay-ratio rule
(:func:`~torchrl_psp.training.parts.updates_due`) gives DrQ-v2's "one update every
``update_every_steps`` agent steps after ``seed_frames``".

This module imports neither torch nor TorchRL.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DRQV2_DIFFICULTY",
    "STD_SCHEDULE_STEPS",
    "drqv2_config_errors",
    "drqv2_run_config",
    "std_schedule_steps",
]

#: The paper's task groups (official ``cfgs/task/*.yaml``); other tasks count as medium.
DRQV2_DIFFICULTY: dict[str, str] = {
    **{
        task: "easy"
        for task in (
            "cartpole-balance",
            "cartpole-balance_sparse",
            "cartpole-swingup",
            "cup-catch",
            "finger-spin",
            "hopper-stand",
            "pendulum-swingup",
            "walker-stand",
            "walker-walk",
        )
    },
    **{task: "hard" for task in ("humanoid-stand", "humanoid-walk", "humanoid-run")},
}
#: Agent steps over which the exploration std falls from ``std_init`` to ``std_final``.
STD_SCHEDULE_STEPS = {"easy": 100_000, "medium": 500_000, "hard": 2_000_000}


def std_schedule_steps(cfg: Any) -> int:
    """The length of the std schedule: ``drqv2.std_schedule_steps``, or the task's group's.

    Examples:
        >>> from types import SimpleNamespace as NS
        >>> cfg = NS(env=NS(domain="cartpole", task="swingup"), drqv2=NS(std_schedule_steps="auto"))
        >>> std_schedule_steps(cfg)
        100000
        >>> cfg.env.domain, cfg.env.task = "cheetah", "run"
        >>> std_schedule_steps(cfg)
        500000
    """
    steps = cfg.drqv2.std_schedule_steps
    if steps != "auto":
        return steps
    group = DRQV2_DIFFICULTY.get(f"{cfg.env.domain}-{cfg.env.task}", "medium")
    return STD_SCHEDULE_STEPS[group]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def drqv2_config_errors(cfg: Any) -> list[str]:
    """Every problem of the ``drqv2`` section, one line each (empty: it can run).

    Examples:
        >>> from omegaconf import OmegaConf
        >>> cfg = OmegaConf.create({"drqv2": {"batch_size": 0, "lr": 1e-4, "n_step": 3,
        ...     "frame_stack": 3, "update_every_steps": 2, "seed_frames": 4000,
        ...     "feature_dim": 50, "hidden_dim": 1024, "augmentation_pad": 4,
        ...     "discount": 0.99, "critic_target_tau": 0.01, "std_init": 1.0,
        ...     "std_final": 0.1, "std_clip": 0.3, "std_schedule_steps": "auto"}})
        >>> drqv2_config_errors(cfg)
        ['drqv2.batch_size must be a positive integer, got 0.']
    """
    section = cfg.get("drqv2") if hasattr(cfg, "get") else getattr(cfg, "drqv2", None)
    if section is None:
        return ["variant=drqv2 needs the drqv2 section of recipes/config/config.yaml."]
    errors = []
    for name in ("batch_size", "n_step", "frame_stack", "update_every_steps", "feature_dim"):
        value = section[name]
        if not _is_int(value) or value < 1:
            errors.append(f"drqv2.{name} must be a positive integer, got {value!r}.")
    for name in ("hidden_dim", "seed_frames", "augmentation_pad"):
        value = section[name]
        if not _is_int(value) or value < 0:
            errors.append(f"drqv2.{name} must be an integer >= 0, got {value!r}.")
    for name in ("lr", "std_init"):
        if not _is_number(section[name]) or section[name] <= 0:
            errors.append(f"drqv2.{name} must be a positive number, got {section[name]!r}.")
    for name in ("discount", "critic_target_tau"):
        value = section[name]
        if not _is_number(value) or not 0 < value <= 1:
            errors.append(f"drqv2.{name} must be in (0, 1], got {value!r}.")
    for name in ("std_final", "std_clip"):
        if not _is_number(section[name]) or section[name] < 0:
            errors.append(f"drqv2.{name} must be >= 0, got {section[name]!r}.")
    if _is_number(section.std_final) and _is_number(section.std_init):
        if section.std_final > section.std_init:
            errors.append(
                f"drqv2.std_final={section.std_final} must not exceed drqv2.std_init="
                f"{section.std_init} (the exploration std falls)."
            )
    steps = section.std_schedule_steps
    if steps != "auto" and (not _is_int(steps) or steps < 1):
        errors.append(
            f"drqv2.std_schedule_steps must be auto or a positive integer, got {steps!r}."
        )
    return errors


def drqv2_run_config(cfg: Any) -> Any:
    """The configuration of a ``variant=drqv2`` run, with what DrQ-v2 decides filled in.

    ``replay.batch_size`` = ``drqv2.batch_size``; ``replay.sequence_length`` = the window
    an update reads per sample (``n_step + frame_stack - 1`` steps: the stacked frames
    of the first observation and the n steps after it); ``replay.replay_ratio`` such that
    one update is due every ``drqv2.update_every_steps`` agent steps;
    ``collector.prefill_steps`` = ``drqv2.seed_frames / env.frame_skip`` (uniformly random
    actions, no update); ``replay.refresh_states`` off (no latent state to refresh). The
    other sections are kept. Applying it twice changes nothing (a resumed run's stored
    configuration already holds these values).

    Examples:
        >>> from omegaconf import OmegaConf
        >>> cfg = OmegaConf.create({"env": {"frame_skip": 2}, "collector": {"prefill_steps": 9},
        ...     "replay": {"batch_size": 16, "sequence_length": 64, "replay_ratio": 512,
        ...                "refresh_states": True},
        ...     "drqv2": {"batch_size": 256, "n_step": 3, "frame_stack": 3,
        ...               "update_every_steps": 2, "seed_frames": 4000}})
        >>> run = drqv2_run_config(cfg)
        >>> run.replay.batch_size, run.replay.sequence_length, run.collector.prefill_steps
        (256, 5, 2000)
        >>> from torchrl_psp.training.parts import updates_due
        >>> updates_due(2000 + 10, run.replay, run.collector.prefill_steps)  # one every 2 steps
        5
    """
    from omegaconf import OmegaConf

    run = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    section = run.drqv2
    window = section.n_step + section.frame_stack - 1
    run.replay.batch_size = section.batch_size
    run.replay.sequence_length = window
    run.replay.replay_ratio = section.batch_size * window / section.update_every_steps
    run.replay.refresh_states = False
    run.collector.prefill_steps = section.seed_frames // run.env.frame_skip
    return run
