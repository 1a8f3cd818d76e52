"""Quality metrics and the frame cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchrl_psp.segmentation import FrameCache
from torchrl_psp.segmentation.metrics import (
    achievable_task_iou,
    best_match_iou,
    boundary_precision_recall,
    mask_iou,
    segments_per_frame,
)


def test_perfect_segmentation_scores_one():
    gt = torch.zeros(2, 8, 8, dtype=torch.int16)
    gt[:, 2:5, 2:6] = 3
    gt[1, 6:, :] = 1
    relabelled = gt.long() * 7 + 2  # ids differ, partition identical
    assert boundary_precision_recall(relabelled, gt) == (1.0, 1.0)
    assert best_match_iou(relabelled, gt) == pytest.approx(1.0)
    assert achievable_task_iou(relabelled, gt > 0) == pytest.approx(1.0)


def test_boundary_tolerance():
    gt = torch.tensor([[[1, 1, 1, 2, 2, 2]]])
    shifted = torch.tensor([[[1, 1, 2, 2, 2, 2]]])
    assert boundary_precision_recall(shifted, gt, tolerance=0)[1] == pytest.approx(0.5)
    assert boundary_precision_recall(shifted, gt, tolerance=1) == (1.0, 1.0)


def test_undersegmentation_is_penalised():
    gt = torch.tensor([[[0, 1, 1, 2, 2, 0]]])
    one_blob = torch.ones_like(gt)
    assert best_match_iou(one_blob, gt) == pytest.approx(1 / 3)
    assert boundary_precision_recall(one_blob, gt)[1] == 0.0
    assert achievable_task_iou(one_blob, gt > 0) == pytest.approx(4 / 6)


def test_mask_iou_and_counts():
    a = torch.tensor([[[True, True, False, False]], [[False] * 4]])
    b = torch.tensor([[[True, False, False, False]], [[False] * 4]])
    assert mask_iou(a, b) == pytest.approx((0.5 + 1.0) / 2)
    assert segments_per_frame(torch.tensor([[[1, 2, 2, 3]]])) == 3
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(a, b[:, :, :2])


def test_cache_keys_and_lru():
    cache = FrameCache(2)
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert cache.key(a) == cache.key(a.copy()) != cache.key(b)
    assert cache.key(a) != cache.key(a.reshape(8, 2, 3))  # same bytes, other shape
    cache.put(cache.key(a), torch.ones(1))
    cache.put(cache.key(b), torch.zeros(1))
    assert cache.get(cache.key(a)) is not None  # a is now the most recent
    cache.put(b"other", torch.ones(1))
    assert cache.get(cache.key(b)) is None and len(cache) == 2
    assert "hits=1" in repr(cache)
    cache.clear()
    assert len(cache) == 0 and cache.hits == cache.misses == 0
    with pytest.raises(ValueError):
        FrameCache(-1)
