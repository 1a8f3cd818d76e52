"""SAMSegmentation: Segment Anything's automatic masks as a ``"segments"`` transform (PSP §2.2)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from torchrl_psp.keys import MAX_SEGMENT_ID
from torchrl_psp.segmentation.base import SegmentationTransform
from torchrl_psp.segmentation.sam.automatic import OVERLAP_RULES, automatic_segments
from torchrl_psp.segmentation.sam.checkpoints import resolve_sam

if TYPE_CHECKING:  # segment_anything is imported where a SAM is built
    from segment_anything.modeling import Sam

__all__ = ["SAMSegmentation"]


class SAMSegmentation(SegmentationTransform):
    """Writes ``"segments"`` from SAM's automatic mask generation on every frame.

    The objects PSP aggregates its saliency over (PSP §2.2): a grid of
    ``points_per_side**2`` point prompts per frame, SAM's three masks per point,
    filtered by predicted IoU and stability score, duplicates removed, painted into one
    ``int16`` id image (``0`` = unassigned). Overlaps are resolved deterministically: the
    mask with the highest predicted IoU wins (``overlap="iou"``; ``"area"`` lets the
    smallest win), ids are ``1..K`` in that order. See
    :mod:`torchrl_psp.segmentation.sam.automatic` for the exact rule.

    Cost: every frame goes through SAM's ViT image encoder at ``encoder_input_size``
    (1024 for released models: a 64x64 frame is upsampled 16x, so it costs as much as a
    megapixel photo). ``encoder_input_size=256`` runs the encoder on a 16x16 token grid
    (about 16x fewer tokens) with resampled position embeddings, an approximation of
    the model whose quality effect needs real weights to measure. Frames are encoded
    ``frames_per_batch`` at a time, all point prompts of a batch go through the mask
    decoder ``points_per_batch`` at a time, and repeated frames hit a cache.

    The model lives on ``device`` (CUDA when present by default); ``Transform.to`` does
    not move it, and it is not part of the transform's ``state_dict``.

    Args:
        sam: a built SAM (e.g. :func:`~torchrl_psp.segmentation.build_tiny_sam` for smoke
            tests); or ``None`` and a ``checkpoint``.
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"`` (with ``checkpoint``).
        checkpoint: path of the official checkpoint file of ``model_type``.
        points_per_side: prompt grid side (SAM's default 32 is for megapixel images).
        encoder_input_size: encoder input side, ``None`` for the model's own.
        frames_per_batch: frames per encoder call.
        points_per_batch: prompts per mask-decoder call.
        pred_iou_thresh: minimum predicted IoU (``None`` keeps all), SAM's default 0.88.
        stability_score_thresh: minimum stability score, SAM's default 0.95.
        stability_score_offset: SAM's default 1.0.
        nms_iou_thresh: mask-IoU threshold for duplicates, ``None`` to keep all.
        min_mask_area: minimum mask size in frame pixels.
        overlap: ``"iou"`` (default) or ``"area"``.
        amp_dtype: autocast dtype, e.g. ``torch.bfloat16`` on CUDA (``None``: fp32).
        cache_size: frames kept in the result cache (``0`` disables it).
        device: where SAM runs; ``"auto"`` picks CUDA when present.
        in_keys: pixel entries. Defaults to ``["pixels"]``.
        out_keys: output entries. Defaults to ``["segments"]``.

    Examples:
        >>> from torchrl.envs import TransformedEnv
        >>> from torchrl_psp.segmentation import build_tiny_sam
        >>> from torchrl_psp.segmentation.testing import SyntheticPixelEnv
        >>> env = TransformedEnv(SyntheticPixelEnv(size=32), SAMSegmentation(
        ...     build_tiny_sam(image_size=64), points_per_side=4, pred_iou_thresh=None,
        ...     stability_score_thresh=None, device="cpu"))
        >>> td = env.rollout(3)
        >>> td["segments"].shape, td["segments"].dtype
        (torch.Size([3, 32, 32]), torch.int16)
    """

    output = "segments"

    def __init__(
        self,
        sam: Sam | None = None,
        *,
        model_type: str = "vit_b",
        checkpoint: str | os.PathLike | None = None,
        points_per_side: int = 16,
        encoder_input_size: int | None = None,
        frames_per_batch: int = 8,
        points_per_batch: int = 256,
        pred_iou_thresh: float | None = 0.88,
        stability_score_thresh: float | None = 0.95,
        stability_score_offset: float = 1.0,
        nms_iou_thresh: float | None = 0.7,
        min_mask_area: int = 0,
        overlap: str = "iou",
        amp_dtype: torch.dtype | None = None,
        cache_size: int = 4096,
        device: torch.device | str | None = "auto",
        in_keys: Sequence | None = None,
        out_keys: Sequence | None = None,
    ):
        if overlap not in OVERLAP_RULES:
            raise ValueError(f"overlap must be one of {OVERLAP_RULES}, got {overlap!r}.")
        if points_per_side < 1 or points_per_batch < 1:
            raise ValueError(
                f"points_per_side and points_per_batch must be >= 1, got {points_per_side} "
                f"and {points_per_batch}."
            )
        super().__init__(
            in_keys, out_keys, frames_per_batch=frames_per_batch, cache_size=cache_size
        )
        # Not registered as a sub-module: env.to(...) must not move it, and its weights do
        # not belong in the transform's state_dict.
        self.__dict__["_sam"] = resolve_sam(sam, model_type, checkpoint, device)
        self.options = {
            "points_per_side": points_per_side,
            "encoder_input_size": encoder_input_size,
            "points_per_batch": points_per_batch,
            "pred_iou_thresh": pred_iou_thresh,
            "stability_score_thresh": stability_score_thresh,
            "stability_score_offset": stability_score_offset,
            "nms_iou_thresh": nms_iou_thresh,
            "min_mask_area": min_mask_area,
            "overlap": overlap,
            "amp_dtype": amp_dtype,
        }
        if encoder_input_size is not None:  # validate early
            from torchrl_psp.segmentation.sam.core import frame_geometry

            frame_geometry(self.sam, 64, 64, encoder_input_size)

    @property
    def sam(self) -> Sam:
        """The SAM model."""
        return self.__dict__["_sam"]

    @property
    def device(self) -> torch.device:
        """Where SAM runs."""
        return self.sam.pixel_mean.device

    def max_segment_id(self, height: int, width: int) -> int:
        """At most three masks per point prompt."""
        return min(3 * self.options["points_per_side"] ** 2, height * width, MAX_SEGMENT_ID)

    def _segment(self, frames: torch.Tensor) -> torch.Tensor:
        return automatic_segments(self.sam, frames.to(self.device), **self.options)
