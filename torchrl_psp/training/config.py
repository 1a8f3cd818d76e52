"""Checks of a recipe configuration, run before anything is built or trained."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


__all__ = [
    "RESUMABLE",
    "SEGMENTERS",
    "ConfigError",
    "config_errors",
    "load_run_config",
    "may_change_on_resume",
    "override_key",
    "resolve_device",
    "resume_config",
    "validate_config",
]

#: Settings that may change when a run is resumed (the others are the run's identity).
RESUMABLE = (
    "train.",
    "eval.",
    "logger.",
    "checkpoint.",
    "collector.num_workers",
    "device",
    "optim.compile",
)
#: Sources of ``"segments"`` / ``"task_mask"`` the recipe knows (``env.segmentation``).
SEGMENTERS = ("none", "gt", "sam", "weightfree", "persam")
#: What each source provides: ``"segments"``, and a task mask that is ground truth or learned.
_PROVIDES = {
    "none": set(),
    "gt": {"segments", "task_mask:gt"},
    "sam": {"segments"},
    "weightfree": {"segments", "task_mask:learned"},
    "persam": {"task_mask:learned"},
}


def _sources(entry: str) -> str:
    names = [source for source in SEGMENTERS if entry in _PROVIDES[source]]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def _segmentation_errors(variant: str, source: str) -> list[str]:
    """What the variant's loss reads (:data:`~torchrl_psp.variants.VARIANT_SPECS`) against
    what ``env.segmentation`` provides."""
    from torchrl_psp.variants import VARIANT_SPECS

    spec, provided = VARIANT_SPECS[variant], _PROVIDES[source]
    errors = []
    if spec.segments and "segments" not in provided:
        errors.append(
            f"variant={variant} aggregates saliency within segments: set env.segmentation to "
            f"{_sources('segments')} (got {source!r}), or use a variant without segment "
            "aggregation (e.g. psp_noseg)."
        )
    if spec.task_mask == "gt" and "task_mask:gt" not in provided:
        errors.append(
            f"variant={variant} reconstructs the ground-truth task mask: set "
            f"env.segmentation={_sources('task_mask:gt')} (got {source!r})."
        )
    if spec.task_mask == "learned" and "task_mask:learned" not in provided:
        with_gt = [v.name for v in VARIANT_SPECS.values() if v.task_mask == "gt"]
        errors.append(
            f"variant={variant} needs a learned task-mask segmenter: set env.segmentation="
            f"{_sources('task_mask:learned')} (got {source!r}); with ground-truth masks use "
            f"variant={' or '.join(with_gt)}."
        )
    return errors


#: Settings added after runs were first recorded, with the value those runs used.
_ADDED_SETTINGS = {
    "optim.actor_lr": None,
    "optim.critic_lr": None,
    "optim.actor_gradient": "dynamics",
    "optim.entropy_bonus": 3e-4,
    "optim.max_consecutive_skips": 5,
    "replay.refresh_states": False,
    "psp.epsilon": None,
}


class ConfigError(ValueError):
    """A configuration that cannot run; raised before any training starts."""


def load_run_config(run_dir: str | Path) -> Any:
    """The stored ``config.yaml`` of a run, completed with settings added since it was made.

    Raises:
        ConfigError: no ``config.yaml`` in ``run_dir``.
    """
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"resume={run_dir}: no run there (missing {path}).")
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(path)
    for key, value in _ADDED_SETTINGS.items():
        if OmegaConf.select(cfg, key, default="<missing>") == "<missing>":
            OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def override_key(override: str) -> str:
    """The setting a command-line override names: ``"+train.x=3"`` -> ``"train.x"``."""
    return override.split("=", 1)[0].lstrip("+~")


def may_change_on_resume(override: str) -> bool:
    """Whether a resumed run accepts this override (its setting is in :data:`RESUMABLE`).

    Examples:
        >>> may_change_on_resume("train.total_env_steps=2000"), may_change_on_resume("seed=1")
        (True, False)
    """
    return override_key(override).startswith(RESUMABLE)


def resume_config(run_dir: str | Path, overrides: list[str]) -> Any:
    """The configuration to resume ``run_dir`` with: its stored one plus ``overrides``.

    Only :data:`RESUMABLE` settings may change. A finished run (its ``done`` marker is
    there) is refused unless ``overrides`` raise ``train.total_env_steps`` above the
    budget it ran to, which extends it.

    Raises:
        ConfigError: no run in ``run_dir``, a setting that may not change, or a finished
            run that the overrides do not extend; the message says which and the way out.
    """
    from omegaconf import OmegaConf

    stored = load_run_config(run_dir)
    refused = [o for o in overrides if not may_change_on_resume(o)]
    if refused:
        raise ConfigError(
            f"Cannot change {refused} when resuming a run (only {', '.join(RESUMABLE)} may change)."
        )
    cfg = OmegaConf.merge(stored, OmegaConf.from_dotlist(overrides))
    if (Path(run_dir) / "done").exists():
        budget, asked = stored.train.total_env_steps, cfg.train.total_env_steps
        if not (_is_int(asked) and asked > budget):
            raise ConfigError(
                f"resume={run_dir}: the run has finished ({budget} env steps; its 'done' "
                "marker is there), so there is nothing to resume. To extend it, raise the "
                f"budget: train.total_env_steps=N with N > {budget}."
            )
    return cfg


def resolve_device(device: str | None) -> torch.device:
    """:func:`torchrl_psp.utils.device.resolve_device`, CUDA required where asked for.

    Raises:
        ConfigError: for a CUDA device on a machine without CUDA.
    """
    from torchrl_psp.utils.device import resolve_device as resolve

    try:
        return resolve(device, require_available=True)
    except ValueError as error:  # torch.device's own RuntimeError passes through
        raise ConfigError(str(error)) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _image_stages(cfg: Any) -> int:
    """Stride-2 stages of the configured image encoder (the image size must divide 2**n)."""
    from omegaconf import OmegaConf

    from torchrl_psp.modules.dreamer_config import DREAMER_V3_PRESETS

    overrides = OmegaConf.to_container(cfg.model.overrides) if cfg.model.overrides else {}
    mults = overrides.get("image_mults", DREAMER_V3_PRESETS[cfg.model.size].image_mults)
    return len(mults)


def _task_errors(env: Any) -> list[str]:
    from dm_control import suite

    domains = sorted({domain for domain, _ in suite.ALL_TASKS})
    if env.domain not in domains:
        return [
            f"env.domain={env.domain!r} is not a DeepMind Control domain; expected one of {domains}."
        ]
    tasks = sorted(task for domain, task in suite.ALL_TASKS if domain == env.domain)
    if env.task not in tasks:
        return [
            f"env.task={env.task!r} is not a task of env.domain={env.domain}; expected one of {tasks}."
        ]
    return []


def _background_errors(env: Any) -> list[str]:
    """The compositing mode, and settings the chosen distractor would not use (make_env's rule)."""
    from torchrl_psp.envs import COMPOSITING_MODES
    from torchrl_psp.envs.factory import check_unused_arguments

    if env.compositing not in COMPOSITING_MODES:
        return [f"env.compositing must be one of {COMPOSITING_MODES}; got {env.compositing!r}."]
    try:
        check_unused_arguments(
            env.distractor,
            compositing=env.compositing,
            replace_floor=None,
            video_source=env.video_source,
            grayscale=env.grayscale,
            max_video_frames=env.max_video_frames,
            reafferent_seed=0,
        )
    except ValueError as error:
        return [f"env: {error}".replace("make_env got arguments", "settings")]
    return []


def config_errors(cfg: Any) -> list[str]:
    """Every problem of a recipe configuration, one line each (empty: it can run).

    Checks the variant, the task, the distractor and the segmentation source, that the
    variant gets the entries its loss needs (``sd_approx`` and ``sd_l2`` need a *learned*
    task mask, ``sd_gt`` the ground truth, PSP segments), that a SAM checkpoint exists
    when SAM is used, the image size against the encoder, every size and rate of the
    schedule (type and range), ``psp.epsilon`` against the variant, and the device.
    Nothing is built.
    """
    from omegaconf import OmegaConf

    from torchrl_psp.envs.factory import DISTRACTORS
    from torchrl_psp.modules.dreamer_config import DREAMER_V3_PRESETS
    from torchrl_psp.variants import ADVERSARIAL_HEAD_VARIANTS
    from torchrl_psp.variants import VARIANT_SPECS as VARIANTS

    errors: list[str] = []
    variant, env = cfg.variant, cfg.env
    if variant not in VARIANTS:
        errors.append(f"Unknown variant {variant!r}; expected one of {sorted(VARIANTS)}.")
    elif VARIANTS[variant].agent == "drqv2":  # its own section (imports no torch)
        from torchrl_psp.baselines.drqv2_config import drqv2_config_errors

        errors += drqv2_config_errors(cfg)
    errors += _task_errors(env)
    if env.distractor not in DISTRACTORS:
        errors.append(f"env.distractor must be one of {DISTRACTORS}; got {env.distractor!r}.")
    errors += _background_errors(env)
    source = env.segmentation
    if source not in SEGMENTERS:
        errors.append(f"env.segmentation must be one of {SEGMENTERS}; got {source!r}.")
    if source in SEGMENTERS and variant in VARIANTS:
        errors += _segmentation_errors(variant, source)
    if source in ("sam", "persam"):
        checkpoint = cfg.segmenter.sam_checkpoint
        if not checkpoint:
            errors.append(
                f"env.segmentation={source} needs a Segment Anything checkpoint: set "
                "segmenter.sam_checkpoint=/path/to/sam_vit_b_01ec64.pth (download from "
                "https://github.com/facebookresearch/segment-anything#model-checkpoints); "
                "nothing is downloaded at run time. env.segmentation=weightfree needs no "
                "checkpoint."
            )
        elif checkpoint != "random" and not Path(checkpoint).expanduser().is_file():
            errors.append(f"segmenter.sam_checkpoint={checkpoint!r} is not a file.")

    positive = {
        "train.total_env_steps": cfg.train.total_env_steps,
        "env.frame_skip": env.frame_skip,
        "replay.batch_size": cfg.replay.batch_size,
        "replay.sequence_length": cfg.replay.sequence_length,
        "replay.capacity": cfg.replay.capacity,
        "collector.frames_per_batch": cfg.collector.frames_per_batch,
        "eval.every_env_steps": cfg.eval.every_env_steps,
        "eval.episodes": cfg.eval.episodes,
        "eval.max_steps": cfg.eval.max_steps,
        "checkpoint.every_updates": cfg.checkpoint.every_updates,
        "logger.every_updates": cfg.logger.every_updates,
        "optim.max_consecutive_skips": cfg.optim.max_consecutive_skips,
        "optim.imagination_horizon": cfg.optim.imagination_horizon,
    }
    for name, value in positive.items():
        if not _is_int(value) or value < 1:
            errors.append(f"{name} must be a positive integer, got {value!r}.")
    for name in ("collector.num_workers", "collector.prefill_steps", "optim.warmup_steps"):
        value = OmegaConf.select(cfg, name)
        if not _is_int(value) or value < 0:
            errors.append(f"{name} must be an integer >= 0, got {value!r}.")
    if not _is_int(cfg.seed):
        errors.append(f"seed must be an integer, got {cfg.seed!r}.")

    sizes = tuple(DREAMER_V3_PRESETS)
    if cfg.model.size not in sizes:
        errors.append(f"model.size must be one of {sizes}; got {cfg.model.size!r}.")
    size = env.image_size
    if not _is_int(size) or size < 1:
        errors.append(f"env.image_size must be a positive integer (pixels), got {size!r}.")
    elif cfg.model.size in sizes:
        multiple = 2 ** _image_stages(cfg)
        if size % multiple:
            errors.append(
                f"env.image_size={size} must be a multiple of {multiple} (the image encoder "
                f"halves it {multiple.bit_length() - 1} times), e.g. "
                f"{max(multiple, size // multiple * multiple)}."
            )

    if cfg.optim.actor_gradient not in ("reinforce", "dynamics"):
        errors.append(
            f"optim.actor_gradient must be reinforce or dynamics, got {cfg.optim.actor_gradient!r}."
        )
    for name in ("lr", "actor_lr", "critic_lr", "horizon"):
        value = cfg.optim[name]
        if value is None and name in ("actor_lr", "critic_lr"):  # null: optim.lr
            continue
        if not _is_number(value) or value <= 0:
            errors.append(f"optim.{name} must be a positive number, got {value!r}.")
    entropy_bonus = cfg.optim.entropy_bonus
    if not _is_number(entropy_bonus) or entropy_bonus < 0:
        errors.append(f"optim.entropy_bonus must be >= 0, got {entropy_bonus!r}.")
    epsilon = OmegaConf.select(cfg, "psp.epsilon", default=None)
    if epsilon is not None:
        if not _is_number(epsilon) or epsilon < 0:
            errors.append(f"psp.epsilon must be null or a number >= 0, got {epsilon!r}.")
        elif variant in VARIANTS and not VARIANTS[variant].adversarial_head:
            errors.append(
                f"psp.epsilon={epsilon} is set, but variant={variant} has no adversarial "
                f"action head (variants with one: {list(ADVERSARIAL_HEAD_VARIANTS)}); leave "
                "psp.epsilon null."
            )
    ratio = cfg.replay.replay_ratio
    if not _is_number(ratio) or ratio <= 0:
        errors.append(f"replay.replay_ratio must be positive, got {ratio!r}.")

    collector = cfg.collector
    if collector.backend not in ("process", "ray"):
        errors.append(f"collector.backend must be process or ray, got {collector.backend!r}.")
    elif collector.backend == "ray" and collector.num_workers and not find_spec("ray"):
        errors.append(
            'collector.backend=ray needs Ray, which is not installed: pip install -e ".[distributed]".'
        )
    workers, frames, length = (
        collector.num_workers,
        collector.frames_per_batch,
        cfg.replay.sequence_length,
    )
    if (
        all(_is_int(v) and v > 0 for v in (workers, frames, length))
        and workers > 1
        and frames // workers < length
    ):
        errors.append(
            f"With {workers} workers each collected chunk has {frames // workers} steps, "
            f"fewer than replay.sequence_length={length}: sequences cannot span chunks of "
            "different workers. Raise collector.frames_per_batch."
        )
    if not isinstance(cfg.replay.refresh_states, bool):
        errors.append(
            f"replay.refresh_states must be true or false, got {cfg.replay.refresh_states!r}."
        )
    if cfg.logger.wandb not in ("offline", "online", "disabled"):
        errors.append(
            f"logger.wandb must be offline, online or disabled; got {cfg.logger.wandb!r}."
        )
    try:
        device_type = resolve_device(cfg.device).type
    except (ConfigError, RuntimeError) as error:
        errors.append(str(error))
    else:
        if variant in VARIANTS:
            from torchrl_psp.training.execution import compile_setting_error

            compile_error = compile_setting_error(cfg.optim.compile, device_type, variant)
            if compile_error is not None:
                errors.append(compile_error)
    return errors


def validate_config(cfg: Any) -> None:
    """Raises :class:`ConfigError` listing every problem of ``cfg``, one line each.

    See :func:`config_errors` for what is checked.
    """
    errors = config_errors(cfg)
    if errors:
        raise ConfigError("\n".join(errors))
