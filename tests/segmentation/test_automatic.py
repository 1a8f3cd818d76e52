"""SAM's automatic masks as segment ids: the overlap rule, ids, batching."""

from __future__ import annotations

import pytest
import torch

from torchrl_psp.keys import SEGMENTS_DTYPE
from torchrl_psp.segmentation import automatic_segments, paint_segments, point_grid

from .helpers import KEEP_ALL


def _masks(*rows: str) -> torch.Tensor:
    """Masks of one 1-row frame from strings such as '1100'."""
    return torch.tensor([[[[c == "1" for c in row]] for row in rows]])


def test_highest_priority_wins_and_ids_follow_rank():
    masks = _masks("111100", "001111", "000001")
    seg = paint_segments(masks, torch.tensor([[0.5, 0.9, 0.7]]), torch.ones(1, 3, dtype=torch.bool))
    # Mask 1 (0.9) wins its pixels; mask 2 (0.7) lies inside mask 1, so it owns no pixel
    # and gets no id; mask 0 (0.5) keeps the rest and gets the next id.
    assert seg.tolist() == [[[2, 2, 1, 1, 1, 1]]]
    seg = paint_segments(masks, torch.tensor([[0.5, 0.6, 0.7]]), torch.ones(1, 3, dtype=torch.bool))
    assert seg.tolist() == [[[3, 3, 2, 2, 2, 1]]]


def test_ties_keep_prompt_order():
    masks = _masks("1110", "0111")
    seg = paint_segments(masks, torch.tensor([[0.8, 0.8]]), torch.ones(1, 2, dtype=torch.bool))
    assert seg.tolist() == [[[1, 1, 1, 2]]]


def test_invalid_masks_and_empty_pixels():
    masks = _masks("1100", "0011")
    seg = paint_segments(masks, torch.tensor([[0.9, 0.8]]), torch.tensor([[False, True]]))
    assert seg.tolist() == [[[0, 0, 1, 1]]]


def test_duplicates_are_removed_and_ids_are_consecutive():
    masks = _masks("111100", "111100", "000011")
    priority = torch.tensor([[0.9, 0.8, 0.7]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    seg = paint_segments(masks, priority, valid, nms_iou_thresh=0.7)
    assert seg.tolist() == [[[1, 1, 1, 1, 2, 2]]]
    # A fully hidden mask gets no id either, even without NMS.
    assert paint_segments(masks, priority, valid, None).tolist() == seg.tolist()


def test_batch_of_frames_is_independent():
    a, b = _masks("1100", "0011"), _masks("1111", "0000")
    priority = torch.tensor([[0.1, 0.9], [0.9, 0.1]])
    valid = torch.ones(2, 2, dtype=torch.bool)
    seg = paint_segments(torch.cat([a, b]), priority, valid)
    assert seg.tolist() == [[[2, 2, 1, 1]], [[1, 1, 1, 1]]]


def test_point_grid():
    grid = point_grid(4, 32, 16)
    assert grid.shape == (16, 2)
    assert grid[0].tolist() == [2.0, 4.0] and grid[-1].tolist() == [14.0, 28.0]
    with pytest.raises(ValueError):
        point_grid(0, 32, 32)


def test_automatic_segments_shapes_and_ids(tiny_sam, frames):
    seg = automatic_segments(tiny_sam, frames, points_per_side=3, **KEEP_ALL)
    assert seg.shape == (3, 32, 32) and seg.dtype == SEGMENTS_DTYPE
    assert seg.min() >= 0 and seg.max() <= 27
    for frame in seg:  # ids are consecutive from 1
        ids = frame.unique()
        ids = ids[ids > 0]
        assert ids.tolist() == list(range(1, ids.numel() + 1))
    assert (seg > 0).any()


def test_thresholds_filter_everything(tiny_sam, frames):
    seg = automatic_segments(tiny_sam, frames, points_per_side=2, pred_iou_thresh=1e9)
    assert (seg == 0).all()


def test_area_rule_prefers_small_masks(tiny_sam, frames):
    seg = automatic_segments(tiny_sam, frames, points_per_side=3, overlap="area", **KEEP_ALL)
    assert seg.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="overlap"):
        automatic_segments(tiny_sam, frames, overlap="largest")


def test_batching_equals_one_by_one(tiny_sam, frames):
    together = automatic_segments(tiny_sam, frames, points_per_side=3, **KEEP_ALL)
    single = torch.cat(
        [automatic_segments(tiny_sam, f[None], points_per_side=3, **KEEP_ALL) for f in frames]
    )
    small_chunks = automatic_segments(
        tiny_sam, frames, points_per_side=3, points_per_batch=5, **KEEP_ALL
    )
    assert torch.equal(together, single) and torch.equal(together, small_chunks)
