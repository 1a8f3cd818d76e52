"""PerSAMSegmentation: a one-shot personalised SAM as a ``"task_mask"`` transform (SD §2)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from torchrl_psp.segmentation.base import SegmentationTransform
from torchrl_psp.segmentation.sam.checkpoints import resolve_sam
from torchrl_psp.segmentation.sam.persam import PerSAMPredictor

if TYPE_CHECKING:  # segment_anything is imported where a SAM is built
    from segment_anything.modeling import Sam

__all__ = ["PerSAMSegmentation"]


class PerSAMSegmentation(SegmentationTransform):
    """Writes ``"task_mask"``: where PerSAM-F (or PerSAM) finds the reference's target.

    Segmentation Dreamer's SD_approx reconstructs only what a PerSAM-F personalised on
    one reference says is the task. The reference is an ``(image, mask)`` pair; by
    default (as SD does) the ground-truth task mask of a reset frame, which
    :func:`~torchrl_psp.segmentation.reference_from_env` takes from an env built with
    ground-truth segmentation. The image's background is blackened before it is
    encoded (SD's preparation; ``blacken_reference=False`` keeps it). PerSAM-F's two
    mask weights are fitted on the reference at construction (see
    :attr:`fine_tune_seconds`). The algorithm is described in
    :mod:`torchrl_psp.segmentation.sam.persam`.

    The model lives on ``device`` (CUDA when present by default); ``Transform.to`` does
    not move it and it is not part of the transform's ``state_dict``.

    Args:
        reference: ``(image, mask)``: uint8 ``(H, W, 3)`` and bool ``(H, W)`` (or batches
            of several references).
        sam: a built SAM, or ``None`` and a ``checkpoint``.
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"`` (with ``checkpoint``).
        checkpoint: path of the official checkpoint file of ``model_type``.
        fine_tune: PerSAM-F (``True``, default, as SD) or training-free PerSAM.
        frames_per_batch: frames per model call.
        cache_size: frames kept in the result cache (``0`` disables it).
        device: where SAM runs; ``"auto"`` picks CUDA when present.
        in_keys: pixel entries. Defaults to ``["pixels"]``.
        out_keys: output entries. Defaults to ``["task_mask"]``.
        **persam_kwargs: options of :class:`~torchrl_psp.segmentation.PerSAMPredictor`
            (``fine_tune_steps``, ``lr``, ``guidance_scale``, ``semantic_prompt``,
            ``refine_steps``, ``num_positive``, ``num_negative``, ``blacken_reference``,
            ``encoder_input_size``, ``amp_dtype``).

    Examples:
        >>> from torchrl.envs import TransformedEnv
        >>> from torchrl_psp.segmentation import build_tiny_sam, reference_from_env
        >>> from torchrl_psp.segmentation.testing import SyntheticPixelEnv
        >>> reference = reference_from_env(SyntheticPixelEnv(size=32, with_task_mask=True))
        >>> env = TransformedEnv(SyntheticPixelEnv(size=32), PerSAMSegmentation(
        ...     reference, sam=build_tiny_sam(image_size=64), fine_tune_steps=10, device="cpu"))
        >>> td = env.rollout(2)
        >>> td["task_mask"].shape, td["task_mask"].dtype
        (torch.Size([2, 32, 32]), torch.bool)
    """

    output = "task_mask"

    def __init__(
        self,
        reference: tuple[Any, Any],
        sam: Sam | None = None,
        *,
        model_type: str = "vit_b",
        checkpoint: str | os.PathLike | None = None,
        fine_tune: bool = True,
        frames_per_batch: int = 16,
        cache_size: int = 4096,
        device: torch.device | str | None = "auto",
        in_keys: Sequence | None = None,
        out_keys: Sequence | None = None,
        **persam_kwargs: Any,
    ):
        if not isinstance(reference, (tuple, list)) or len(reference) != 2:
            raise ValueError(
                "reference must be an (image, mask) pair, e.g. reference_from_env(gt_env); got "
                f"{type(reference).__name__}."
            )
        super().__init__(
            in_keys, out_keys, frames_per_batch=frames_per_batch, cache_size=cache_size
        )
        model = resolve_sam(sam, model_type, checkpoint, device)
        self.__dict__["_predictor"] = PerSAMPredictor(
            model, reference[0], reference[1], fine_tune=fine_tune, **persam_kwargs
        )

    @property
    def predictor(self) -> PerSAMPredictor:
        """The underlying :class:`~torchrl_psp.segmentation.PerSAMPredictor`."""
        return self.__dict__["_predictor"]

    @property
    def sam(self) -> Sam:
        """The SAM model."""
        return self.predictor.sam

    @property
    def device(self) -> torch.device:
        """Where SAM runs."""
        return self.predictor.device

    @property
    def fine_tune_seconds(self) -> float:
        """Wall time of PerSAM-F's fit at construction (0 for PerSAM)."""
        return self.predictor.fine_tune_seconds

    def _segment(self, frames: torch.Tensor) -> torch.Tensor:
        return self.predictor.predict(frames)
