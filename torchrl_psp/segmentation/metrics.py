"""Quality of a segmentation against the ground truth (``"segments"``, ``"task_mask"``).

All functions take batches ``(N, H, W)`` and return Python floats averaged as stated.
Ids are only compared within one frame (learned segmenters renumber on every frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "achievable_task_iou",
    "best_match_iou",
    "boundary_map",
    "boundary_precision_recall",
    "mask_iou",
    "segments_per_frame",
]


def _batched(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W) or (H, W), got {tuple(x.shape)}.")
    return x


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, gt = _batched(pred, "pred"), _batched(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(pred.shape)} vs {tuple(gt.shape)}.")
    return pred, gt


def boundary_map(labels: torch.Tensor) -> torch.Tensor:
    """Boolean map of pixels with a 4-neighbour of another label (both sides of an edge).

    Examples:
        >>> boundary_map(torch.tensor([[1, 1, 2, 2]])).int()
        tensor([[0, 1, 1, 0]], dtype=torch.int32)
    """
    out = torch.zeros_like(labels, dtype=torch.bool)
    dx = labels[..., :, 1:] != labels[..., :, :-1]
    dy = labels[..., 1:, :] != labels[..., :-1, :]
    out[..., :, 1:] |= dx
    out[..., :, :-1] |= dx
    out[..., 1:, :] |= dy
    out[..., :-1, :] |= dy
    return out


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return mask
    x = mask.float().unsqueeze(1)
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius).squeeze(1) > 0


def boundary_precision_recall(
    pred: torch.Tensor, gt: torch.Tensor, tolerance: int = 0
) -> tuple[float, float]:
    """Boundary precision and recall, pooled over all frames.

    Recall: fraction of ground-truth boundary pixels with a predicted boundary pixel
    within ``tolerance`` pixels (Chebyshev distance); precision: the converse.

    Examples:
        >>> gt = torch.tensor([[[1, 1, 2, 2]]])
        >>> boundary_precision_recall(gt, gt)
        (1.0, 1.0)
    """
    pred, gt = _check_pair(pred, gt)
    bp, bg = boundary_map(pred), boundary_map(gt)
    recall = (_dilate(bp, tolerance) & bg).sum() / bg.sum().clamp_min(1)
    precision = (_dilate(bg, tolerance) & bp).sum() / bp.sum().clamp_min(1)
    return float(precision), float(recall)


def _overlaps(pred: torch.Tensor, gt: torch.Tensor):
    """Per-frame intersection table ``(gt ids, pred ids)`` and the id lists."""
    gt_ids, gt_idx = torch.unique(gt, return_inverse=True)
    pred_ids, pred_idx = torch.unique(pred, return_inverse=True)
    n_g, n_p = gt_ids.numel(), pred_ids.numel()
    inter = torch.bincount((gt_idx * n_p + pred_idx).flatten(), minlength=n_g * n_p)
    return inter.reshape(n_g, n_p).float(), gt_ids, pred_ids


def best_match_iou(pred: torch.Tensor, gt: torch.Tensor, ignore_id: int | None = 0) -> float:
    """Mean over ground-truth segments (all frames) of the best IoU with one predicted segment.

    Also called average best overlap. ``ignore_id`` (the background, ``0``) is skipped.

    Examples:
        >>> gt = torch.tensor([[[0, 1, 1, 2]]])
        >>> round(best_match_iou(torch.tensor([[[5, 5, 5, 7]]]), gt), 4)
        0.8333
    """
    pred, gt = _check_pair(pred, gt)
    scores = []
    for p, g in zip(pred, gt):
        inter, gt_ids, _ = _overlaps(p, g)
        union = inter.sum(1, keepdim=True) + inter.sum(0, keepdim=True) - inter
        best = (inter / union).amax(1)
        if ignore_id is not None:
            best = best[gt_ids != ignore_id]
        scores.append(best)
    scores = torch.cat(scores)
    return float(scores.mean()) if scores.numel() else float("nan")


def achievable_task_iou(pred: torch.Tensor, task_mask: torch.Tensor) -> float:
    """Mean per-frame IoU with ``task_mask`` of the best task mask made of whole segments.

    Every predicted segment is labelled task when most of its pixels are; the union of
    those segments is compared with the ground truth. It says how well a segmentation
    separates the agent from its surroundings (what PSP's aggregation needs).

    Examples:
        >>> task = torch.tensor([[[True, True, False, False]]])
        >>> round(achievable_task_iou(torch.tensor([[[1, 1, 1, 2]]]), task), 4)
        0.6667
    """
    pred, task_mask = _check_pair(pred, task_mask)
    masks = []
    for p in pred:
        _, inverse = torch.unique(p, return_inverse=True)
        masks.append(inverse)
    inverse = torch.stack(masks)
    ious = []
    for inv, t in zip(inverse, task_mask):
        n = int(inv.max()) + 1
        total = torch.bincount(inv.flatten(), minlength=n).float()
        task = torch.bincount(inv.flatten(), weights=t.flatten().float(), minlength=n)
        chosen = (task / total > 0.5)[inv]
        ious.append(_iou(chosen, t.bool()))
    return float(torch.stack(ious).mean())


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    union = (a | b).sum()
    return torch.where(union > 0, (a & b).sum() / union.clamp_min(1), torch.ones(()))


def mask_iou(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean per-frame IoU of boolean masks (1 for a frame where both are empty).

    Examples:
        >>> mask_iou(torch.tensor([[True, False]]), torch.tensor([[True, True]]))
        0.5
    """
    pred, gt = _check_pair(pred.bool(), gt.bool())
    return float(torch.stack([_iou(p, g) for p, g in zip(pred, gt)]).mean())


def segments_per_frame(segments: torch.Tensor) -> float:
    """Mean number of distinct ids per frame.

    Examples:
        >>> segments_per_frame(torch.tensor([[[0, 1], [1, 2]], [[3, 3], [3, 3]]]))
        2.0
    """
    segments = _batched(segments, "segments")
    return float(sum(torch.unique(s).numel() for s in segments) / segments.shape[0])
