"""SD's selective L2 filter (Segmentation Dreamer, Appendix A)."""

from __future__ import annotations

import torch

__all__ = ["selective_l2_filter"]


def selective_l2_filter(
    mask_seg: torch.Tensor, mask_pred: torch.Tensor, threshold: float = 0.9
) -> torch.Tensor:
    """Pixels on which SD's RGB reconstruction loss is computed (SD Appendix A, Eq. 1).

    ``filter = mask_seg OR NOT (mask_pred > threshold)``: a pixel is left out only when
    the segmenter calls it task-irrelevant while the world model's mask head is
    confident (probability above ``threshold``) that it is task-relevant.

    Args:
        mask_seg: the segmenter's task mask, bool (or 0/1 integers) ``(*batch, H, W)``.
        mask_pred: the mask head's probabilities (after the sigmoid), ``(*batch, H, W)``.
        threshold: confidence above which the mask head overrides the segmenter.

    Returns:
        The bool filter, shape ``(*batch, H, W)``.

    Examples:
        >>> seg = torch.tensor([True, True, False, False])
        >>> pred = torch.tensor([0.95, 0.1, 0.95, 0.1])
        >>> selective_l2_filter(seg, pred)
        tensor([ True,  True, False,  True])
    """
    if mask_seg.shape != mask_pred.shape:
        raise ValueError(
            f"mask_seg and mask_pred must have the same shape (*batch, H, W); got "
            f"{tuple(mask_seg.shape)} and {tuple(mask_pred.shape)}."
        )
    if not mask_pred.is_floating_point():
        raise ValueError(f"mask_pred must hold probabilities (float), got dtype {mask_pred.dtype}.")
    return mask_seg.bool() | ~(mask_pred > threshold)
