"""Segment Anything's automatic mask generation, batched over frames, as a segment-id image.

Follows ``SamAutomaticMaskGenerator`` (single crop layer): a regular grid of positive
point prompts, three multi-mask outputs per point, filtering by predicted IoU and
stability score, removal of duplicates; then the kept masks are painted into one
integer image. Differences, chosen to run without per-frame or per-point Python loops:

* duplicates are removed with "fast NMS" on mask IoU (a mask is dropped when a kept or
  dropped mask of higher priority overlaps it by more than ``nms_iou_thresh``), not
  greedy NMS on boxes;
* masks are computed at frame size directly (see
  :func:`~torchrl_psp.segmentation.sam.core.logits_to_frames`).

**Overlap rule.** Masks are ranked by predicted IoU (SAM's own quality estimate),
highest first (``overlap="iou"``), or by area, smallest first (``overlap="area"``: parts
win over wholes); ties keep prompt order (row-major grid order, then multi-mask index).
A pixel covered by several kept masks gets the id of the highest-ranked one, a pixel
covered by none gets ``0``. Ids are then renumbered ``1..K`` in rank order over the
masks that own at least one pixel, so they are consecutive and deterministic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from torchrl_psp.keys import SEGMENTS_DTYPE
from torchrl_psp.segmentation.sam import core as sam_core

if TYPE_CHECKING:  # segment_anything is imported where a SAM is built
    from segment_anything.modeling import Sam

__all__ = ["OVERLAP_RULES", "automatic_segments", "paint_segments", "point_grid"]

OVERLAP_RULES = ("iou", "area")


def point_grid(points_per_side: int, height: int, width: int) -> torch.Tensor:
    """Frame coordinates ``(P, 2)`` (``x, y``) of a regular grid of ``points_per_side**2``
    points at cell centres, row-major (as SAM's ``build_point_grid``).

    Examples:
        >>> point_grid(2, 64, 64)
        tensor([[16., 16.],
                [48., 16.],
                [16., 48.],
                [48., 48.]])
    """
    if points_per_side < 1:
        raise ValueError(f"points_per_side must be >= 1, got {points_per_side}.")
    centres = (torch.arange(points_per_side, dtype=torch.float32) + 0.5) / points_per_side
    ys, xs = torch.meshgrid(centres * height, centres * width, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def paint_segments(
    masks: torch.Tensor,
    priority: torch.Tensor,
    valid: torch.Tensor,
    nms_iou_thresh: float | None = 0.7,
) -> torch.Tensor:
    """Paints candidate masks into segment ids with the overlap rule of this module.

    Args:
        masks: bool ``(B, K, H, W)`` candidate masks.
        priority: ``(B, K)``, higher first; ties keep index order.
        valid: bool ``(B, K)`` candidates that passed the filters.
        nms_iou_thresh: drop a candidate whose mask IoU with a higher-priority valid
            candidate exceeds this; ``None`` keeps all.

    Returns:
        ``(B, H, W)`` ids in ``0..K`` (``int64``), ``0`` where no kept mask covers a pixel.

    Examples:
        >>> masks = torch.zeros(1, 2, 1, 4, dtype=torch.bool)
        >>> masks[0, 0, 0, :3] = True  # lower priority, bigger
        >>> masks[0, 1, 0, 2:] = True  # higher priority
        >>> paint_segments(masks, torch.tensor([[0.5, 0.9]]), torch.tensor([[True, True]]))
        tensor([[[2, 2, 1, 1]]])
    """
    b, k, h, w = masks.shape
    order = torch.sort(priority, dim=1, descending=True, stable=True).indices
    masks = torch.gather(masks, 1, order[:, :, None, None].expand(-1, -1, h, w))
    valid = torch.gather(valid, 1, order)
    flat = masks.reshape(b, k, h * w)
    keep = valid
    if nms_iou_thresh is not None and k > 1:
        # fp16 counts are exact enough below its max (65504 pixels) and fast on GPUs.
        half = flat.is_cuda and h * w < 65504
        m = flat.to(torch.float16 if half else torch.float32)
        inter = torch.bmm(m, m.transpose(1, 2)).float()
        area = flat.sum(-1).float()
        iou = inter / (area[:, :, None] + area[:, None, :] - inter).clamp_min(1.0)
        higher = torch.ones(k, k, dtype=torch.bool, device=masks.device).triu(1)  # row j < col i
        clash = (iou > nms_iou_thresh) & higher & valid[:, :, None]
        keep = valid & ~clash.any(dim=1)
    covered = flat & keep[:, :, None]
    owner = torch.where(
        covered.any(dim=1),
        covered.to(torch.uint8).argmax(dim=1),
        torch.full_like(flat[:, 0], k, dtype=torch.long),
    )
    counts = torch.zeros(b, k + 1, dtype=torch.long, device=masks.device)
    counts.scatter_add_(1, owner, torch.ones_like(owner))
    present = counts[:, :k] > 0
    lut = torch.cat([torch.cumsum(present, dim=1) * present, counts.new_zeros(b, 1)], dim=1)
    return torch.gather(lut, 1, owner).reshape(b, h, w)


@torch.no_grad()
def automatic_segments(
    sam: Sam,
    frames: torch.Tensor,
    *,
    points_per_side: int = 16,
    encoder_input_size: int | None = None,
    points_per_batch: int = 256,
    pred_iou_thresh: float | None = 0.88,
    stability_score_thresh: float | None = 0.95,
    stability_score_offset: float = 1.0,
    nms_iou_thresh: float | None = 0.7,
    min_mask_area: int = 0,
    overlap: str = "iou",
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Segment ids ``(N, H, W)`` (``int16``) of uint8 frames ``(N, H, W, 3)`` by SAM's automatic
    mask generation; see the module docstring for the rule. Runs on ``sam``'s device.

    Args:
        sam: the model.
        frames: uint8 ``(N, H, W, 3)``.
        points_per_side: the prompt grid is ``points_per_side**2`` points per frame.
        encoder_input_size: encoder input side; ``None`` uses the model's (1024).
        points_per_batch: prompts decoded per mask-decoder call (over all frames).
        pred_iou_thresh: keep masks whose predicted IoU is at least this (``None``: all).
        stability_score_thresh: keep masks whose stability score is at least this.
        stability_score_offset: logit offset of the stability score.
        nms_iou_thresh: mask-IoU threshold of duplicate removal (``None``: off).
        min_mask_area: drop masks with fewer pixels (at frame size).
        overlap: ``"iou"`` or ``"area"``, the overlap rule.
        amp_dtype: autocast dtype (e.g. ``torch.bfloat16`` on CUDA); ``None`` runs fp32.

    Examples:
        >>> from torchrl_psp.segmentation import build_tiny_sam
        >>> frames = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
        >>> seg = automatic_segments(build_tiny_sam(image_size=64), frames, points_per_side=4,
        ...                          pred_iou_thresh=None, stability_score_thresh=None)
        >>> seg.shape, seg.dtype, bool(seg.min() >= 0), bool(seg.max() <= 4 * 4 * 3)
        (torch.Size([2, 32, 32]), torch.int16, True, True)
    """
    if overlap not in OVERLAP_RULES:
        raise ValueError(f"overlap must be one of {OVERLAP_RULES}, got {overlap!r}.")
    n, height, width = frames.shape[:3]
    device = sam.pixel_mean.device
    geometry = sam_core.frame_geometry(sam, height, width, encoder_input_size)
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    with autocast:
        embeddings = sam_core.encode(sam, sam_core.preprocess(sam, frames.to(device), geometry))
    grid = point_grid(points_per_side, height, width).to(device)
    p = grid.shape[0]
    coords = torch.cat([grid[:, None], torch.zeros_like(grid[:, None])], dim=1)  # + SAM's pad
    labels = torch.tensor([sam_core.POSITIVE, sam_core.PAD], device=device).expand(p, 2)
    sparse = sam_core.sparse_prompt(sam, coords, labels, geometry)  # same prompts for all frames
    logits, scores = [], []
    for start in range(0, n * p, points_per_batch):
        rows = torch.arange(start, min(start + points_per_batch, n * p), device=device)
        with autocast:
            low, iou = sam_core.decode(
                sam,
                embeddings[rows // p],
                sparse[rows % p],
                sam_core.dense_prompt(sam, rows.numel(), geometry),
            )
        logits.append(sam_core.logits_to_frames(low[:, 1:], geometry))
        scores.append(iou[:, 1:].float())
    logits = torch.cat(logits).reshape(n, p * 3, height, width)
    iou = torch.cat(scores).reshape(n, p * 3)
    masks = logits > sam.mask_threshold
    area = masks.sum(dim=(-2, -1))
    valid = area >= max(min_mask_area, 1)
    if pred_iou_thresh is not None:
        valid &= iou >= pred_iou_thresh
    if stability_score_thresh is not None:
        high = (logits > sam.mask_threshold + stability_score_offset).sum(dim=(-2, -1))
        low = (logits > sam.mask_threshold - stability_score_offset).sum(dim=(-2, -1))
        valid &= high.float() / low.clamp_min(1).float() >= stability_score_thresh
    priority = iou if overlap == "iou" else -area.float()
    return paint_segments(masks, priority, valid, nms_iou_thresh).to(SEGMENTS_DTYPE)
