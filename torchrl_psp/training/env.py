"""The environment of the training recipe: a distracted DMC task as the agent consumes it."""

from __future__ import annotations

from typing import Any

from torchrl.data import Composite
from torchrl.envs import (
    Compose,
    InitTracker,
    PermuteTransform,
    TensorDictPrimer,
    Transform,
    TransformedEnv,
)

from torchrl_psp.envs import make_env

__all__ = ["add_agent_primer", "make_training_env", "make_segmenter", "seed_env"]


def seed_env(env: TransformedEnv, seed: int) -> None:
    """Seeds the task and every seeded transform (TorchRL's ``set_seed`` skips transforms).

    Examples:
        >>> from torchrl_psp.envs import make_env
        >>> env = make_env("cartpole", "swingup", distractor="video")
        >>> seed_env(env, 3)
        >>> env.transform[-2].seed
        3
    """
    env.set_seed(seed)
    transforms = env.transform if isinstance(env.transform, Compose) else [env.transform]
    for transform in transforms:
        nested = transform if isinstance(transform, Compose) else [transform]
        for inner in nested:
            if hasattr(inner, "set_seed"):
                inner.set_seed(seed)


def _sam(segmenter_cfg: Any):
    from torchrl_psp.segmentation import build_tiny_sam, load_sam

    device = segmenter_cfg.device
    if segmenter_cfg.sam_checkpoint == "random":  # plumbing tests only: meaningless masks
        return build_tiny_sam(seed=0, device="cpu" if device == "auto" else device)
    return load_sam(segmenter_cfg.sam_model_type, segmenter_cfg.sam_checkpoint, device)


def make_segmenter(env_cfg: Any, segmenter_cfg: Any, seed: int) -> Transform | None:
    """The learned segmenter(s) of ``env_cfg.segmentation``, placed after the distractor.

    ``"sam"``: :class:`~torchrl_psp.segmentation.SAMSegmentation` -> ``"segments"``;
    ``"persam"``: :class:`~torchrl_psp.segmentation.PerSAMSegmentation` -> ``"task_mask"``;
    ``"weightfree"``: :class:`~torchrl_psp.segmentation.SuperpixelSegmentation` ->
    ``"segments"`` and :class:`~torchrl_psp.segmentation.ColorTaskMask` ->
    ``"task_mask"``. The one-shot references (PerSAM, colour classifier) are the reset
    frame of the same distracted task with its ground-truth task mask, as SD does.
    ``"gt"`` and ``"none"`` return ``None`` (ground truth is built by ``make_env``).
    """
    from torchrl_psp.segmentation import (
        ColorTaskMask,
        PerSAMSegmentation,
        SAMSegmentation,
        SuperpixelSegmentation,
        reference_from_env,
    )

    source = env_cfg.segmentation
    if source in ("none", "gt"):
        return None

    def reference():
        gt_env = _base_env(env_cfg, seed, segmentation="gt")
        return reference_from_env(gt_env)

    if source == "sam":
        return SAMSegmentation(
            _sam(segmenter_cfg),
            points_per_side=segmenter_cfg.points_per_side,
            device=segmenter_cfg.device,
        )
    if source == "persam":
        return PerSAMSegmentation(
            reference(),
            _sam(segmenter_cfg),
            fine_tune=segmenter_cfg.persam_fine_tune,
            device=segmenter_cfg.device,
        )
    if source == "weightfree":
        return Compose(SuperpixelSegmentation(), ColorTaskMask(reference()))
    raise ValueError(f"Unknown env.segmentation {source!r}.")


def _base_env(env_cfg: Any, seed: int, segmentation: Any) -> TransformedEnv:
    return make_env(
        env_cfg.domain,
        env_cfg.task,
        distractor=env_cfg.distractor,
        segmentation=segmentation,
        image_size=env_cfg.image_size,
        frame_skip=env_cfg.frame_skip,
        seed=seed,
        compositing=env_cfg.compositing,
        video_source=env_cfg.video_source,
        grayscale=env_cfg.grayscale,
        max_video_frames=env_cfg.max_video_frames,
    )


def make_training_env(
    env_cfg: Any,
    segmenter_cfg: Any,
    seed: int,
    primer_spec: Composite | None = None,
) -> TransformedEnv:
    """A distracted DMC task with what the DreamerV3 agent reads.

    :func:`~torchrl_psp.envs.make_env` with the configured distractor and segmentation
    (learned segmenters run inside the env, so inside collector workers too), then:
    pixels permuted to ``(3, H, W)`` (the image encoder's layout; still ``uint8``),
    ``"is_init"`` (:class:`~torchrl.envs.InitTracker`, the RSSM's reset signal) and, when
    ``primer_spec`` is given, zeros for the agent's recurrent state at reset
    (:class:`~torchrl.envs.TensorDictPrimer`).

    Args:
        env_cfg: the recipe's ``env`` section.
        segmenter_cfg: the recipe's ``segmenter`` section.
        seed: seed of the task and of the video start frames.
        primer_spec: the agent's :meth:`~torchrl_psp.modules.DreamerV3Agent.primer_spec`.
    """
    segmentation = "gt" if env_cfg.segmentation == "gt" else "none"
    learned = make_segmenter(env_cfg, segmenter_cfg, seed)
    env = _base_env(env_cfg, seed, learned if learned is not None else segmentation)
    env.append_transform(PermuteTransform((-1, -3, -2), in_keys=["pixels"]))
    env.append_transform(InitTracker())
    if primer_spec is not None:
        add_agent_primer(env, primer_spec)
    return env


def add_agent_primer(env: TransformedEnv, primer_spec: Composite) -> TransformedEnv:
    """Appends zeros at reset for the agent's recurrent state (``primer_spec``'s entries)."""
    env.append_transform(TensorDictPrimer(primer_spec.clone(), reset_key="_reset"))
    return env
