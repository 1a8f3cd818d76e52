"""Checks of a recipe configuration, run before anything is built or trained."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


__all__ = [
    "RESUMABLE",
    "SEGMENTERS",
    "ConfigError",
    "load_run_config",
    "needs_segments",
    "needs_task_mask",
    "resolve_device",
    "validate_config",
]

#: Settings that may change when a run is resumed (the others are the run's identity).
RESUMABLE = ("train.", "eval.", "logger.", "checkpoint.", "collector.num_workers", "device")
#: Sources of ``"segments"`` / ``"task_mask"`` the recipe knows (``env.segmentation``).
SEGMENTERS = ("none", "gt", "sam", "weightfree", "persam")
#: What each source provides.
_PROVIDES = {
    "none": set(),
    "gt": {"segments", "task_mask"},
    "sam": {"segments"},
    "weightfree": {"segments", "task_mask"},
    "persam": {"task_mask"},
}


#: Settings added after runs were first recorded, with the value those runs used.
_ADDED_SETTINGS = {
    "optim.actor_lr": None,
    "optim.critic_lr": None,
    "optim.actor_gradient": "dynamics",
    "optim.entropy_bonus": 3e-4,
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


def needs_segments(variant: str) -> bool:
    """Whether the variant's loss reads ``"segments"`` (PSP with object aggregation)."""
    return variant.startswith("psp") and variant not in ("psp_noseg", "psp_nosal")


def needs_task_mask(variant: str) -> bool:
    """Whether the variant's loss reads ``"task_mask"`` (the SD variants)."""
    return variant.startswith("sd")


def resolve_device(device: str | None) -> torch.device:
    """``"auto"``/``None`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device} was asked for, but CUDA is not available here.")
    return device


def validate_config(cfg: Any) -> None:
    """Raises :class:`ConfigError` naming the setting and what is expected.

    Checks the variant, the distractor and the segmentation source, that the variant gets
    the entries its loss needs (``sd_approx`` and ``sd_l2`` need a *learned* task mask,
    ``sd_gt`` the ground truth, PSP segments), that a SAM checkpoint exists when SAM is
    used, and the sizes of the schedule.
    """
    from torchrl_psp.objectives import VARIANTS

    variant = cfg.variant
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown variant {variant!r}; expected one of {sorted(VARIANTS)}.")
    env = cfg.env
    if env.distractor not in ("none", "reafferent", "video"):
        raise ConfigError(
            f"env.distractor must be none, reafferent or video; got {env.distractor!r}."
        )
    source = env.segmentation
    if source not in SEGMENTERS:
        raise ConfigError(f"env.segmentation must be one of {SEGMENTERS}; got {source!r}.")
    provided = _PROVIDES[source]
    if needs_segments(variant) and "segments" not in provided:
        raise ConfigError(
            f"variant={variant} aggregates saliency within segments: set env.segmentation to gt, "
            f"sam or weightfree (got {source!r}), or use variant=psp_noseg."
        )
    if variant == "sd_gt" and source != "gt":
        raise ConfigError(
            f"variant=sd_gt reconstructs the ground-truth task mask: set env.segmentation=gt (got {source!r})."
        )
    if variant in ("sd_approx", "sd_l2") and source not in ("persam", "weightfree"):
        raise ConfigError(
            f"variant={variant} needs a learned task-mask segmenter: set env.segmentation=persam "
            f"or weightfree (got {source!r}); with ground-truth masks use variant=sd_gt."
        )
    if source in ("sam", "persam"):
        checkpoint = cfg.segmenter.sam_checkpoint
        if not checkpoint:
            raise ConfigError(
                f"env.segmentation={source} needs a Segment Anything checkpoint: set "
                "segmenter.sam_checkpoint=/path/to/sam_vit_b_01ec64.pth (download from "
                "https://github.com/facebookresearch/segment-anything#model-checkpoints); nothing "
                "is downloaded at run time. env.segmentation=weightfree needs no checkpoint."
            )
        if checkpoint != "random" and not Path(checkpoint).expanduser().is_file():
            raise ConfigError(f"segmenter.sam_checkpoint={checkpoint!r} is not a file.")
    train, replay = cfg.train, cfg.replay
    positive = {
        "train.total_env_steps": train.total_env_steps,
        "replay.batch_size": replay.batch_size,
        "replay.sequence_length": replay.sequence_length,
        "replay.capacity": replay.capacity,
        "collector.frames_per_batch": cfg.collector.frames_per_batch,
        "eval.episodes": cfg.eval.episodes,
        "checkpoint.every_updates": cfg.checkpoint.every_updates,
    }
    for name, value in positive.items():
        if value is None or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    if cfg.optim.actor_gradient not in ("reinforce", "dynamics"):
        raise ConfigError(
            f"optim.actor_gradient must be reinforce or dynamics, got {cfg.optim.actor_gradient!r}."
        )
    for name in ("lr", "actor_lr", "critic_lr"):
        value = cfg.optim[name]
        if value is None and name != "lr":  # null: optim.lr
            continue
        if not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"optim.{name} must be a positive number, got {value!r}.")
    entropy_bonus = cfg.optim.entropy_bonus
    if not isinstance(entropy_bonus, (int, float)) or entropy_bonus < 0:
        raise ConfigError(f"optim.entropy_bonus must be >= 0, got {entropy_bonus!r}.")
    if replay.replay_ratio <= 0:
        raise ConfigError(f"replay.replay_ratio must be positive, got {replay.replay_ratio}.")
    workers = cfg.collector.num_workers
    if cfg.collector.backend not in ("process", "ray"):
        raise ConfigError(
            f"collector.backend must be process or ray, got {cfg.collector.backend!r}."
        )
    if workers < 0:
        raise ConfigError(f"collector.num_workers must be >= 0, got {workers}.")
    if workers > 1 and cfg.collector.frames_per_batch // workers < replay.sequence_length:
        raise ConfigError(
            f"With {workers} workers each collected chunk has "
            f"{cfg.collector.frames_per_batch // workers} steps, fewer than "
            f"replay.sequence_length={replay.sequence_length}: sequences cannot span chunks of "
            "different workers. Raise collector.frames_per_batch."
        )
    if cfg.model.size not in ("tiny", "small", "paper"):
        raise ConfigError(f"model.size must be tiny, small or paper; got {cfg.model.size!r}.")
    resolve_device(cfg.device)
