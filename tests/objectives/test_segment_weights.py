"""segment_weights (PSP Eq. 2 and the text after it) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from torchrl_psp.objectives import (
    per_image_quantile,
    segment_mean,
    segment_weights,
    weight_statistics,
)

# A 4x4 image with an outlier, and three segments: 0 (unassigned) = row 0,
# 1 = rows 1-2, 2 = row 3.
SALIENCE = torch.tensor(
    [
        [0.0, 1.0, 2.0, 3.0],
        [4.0, 5.0, 6.0, 7.0],
        [8.0, 9.0, 10.0, 11.0],
        [12.0, 13.0, 14.0, 100.0],
    ]
)
SEGMENTS = torch.tensor([[0] * 4, [1] * 4, [1] * 4, [2] * 4], dtype=torch.int16)
# 99th percentile of the 16 values (linear interpolation): position 0.99 * 15 = 14.85,
# between the sorted values 14 and 100.
CLIP = 14.0 + 0.85 * (100.0 - 14.0)  # 87.1


def test_hand_computed_example_with_clip_segments_and_alpha():
    means = {0: (0 + 1 + 2 + 3) / 4, 1: sum(range(4, 12)) / 8, 2: (12 + 13 + 14 + CLIP) / 4}
    total = 4 * means[0] + 8 * means[1] + 4 * means[2]  # sum of W over the 16 pixels
    expected = torch.tensor(
        [[0.9 * 16 * means[int(s)] / total + 0.1 for s in row] for row in SEGMENTS.tolist()]
    )
    weights = segment_weights(SALIENCE, SEGMENTS)
    torch.testing.assert_close(weights, expected)
    assert weights.sum().item() == pytest.approx(16.0)
    # Without interpolation the weights are W' exactly.
    expected_prime = torch.tensor(
        [[16 * means[int(s)] / total for s in row] for row in SEGMENTS.tolist()]
    )
    torch.testing.assert_close(segment_weights(SALIENCE, SEGMENTS, alpha=1.0), expected_prime)


def test_pixel_wise_ablation_uses_the_clipped_salience():
    clipped = SALIENCE.clone()
    clipped[3, 3] = CLIP
    expected = 0.9 * 16 * clipped / clipped.sum() + 0.1
    torch.testing.assert_close(segment_weights(SALIENCE, None), expected)


def test_all_zero_image_gives_ones_and_others_are_unaffected():
    batch = torch.stack([torch.zeros(4, 4), SALIENCE])
    segments = torch.stack([SEGMENTS, SEGMENTS])
    weights = segment_weights(batch, segments)
    assert torch.equal(weights[0], torch.ones(4, 4))
    torch.testing.assert_close(weights[1], segment_weights(SALIENCE, SEGMENTS))
    assert torch.isfinite(weights).all()


def test_salience_clipped_to_zero_gives_ones():
    """Fewer than 1% non-zero pixels: the 99th percentile is 0, the clipped map is all zero."""
    salience = torch.zeros(20, 20)
    salience[0, :3] = 5.0
    assert torch.equal(segment_weights(salience, None), torch.ones(20, 20))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 1.0])
def test_every_image_has_mean_one(alpha):
    torch.manual_seed(0)
    salience = torch.rand(3, 5, 8, 8) ** 4
    segments = torch.randint(0, 6, (3, 5, 8, 8))
    for seg in (segments, None):
        weights = segment_weights(salience, seg, alpha=alpha)
        torch.testing.assert_close(weights.mean((-2, -1)), torch.ones(3, 5))
        assert (weights >= 1 - alpha - 1e-6).all()
    if alpha == 0.0:
        assert torch.equal(
            segment_weights(salience, segments, alpha=alpha), torch.ones_like(salience)
        )


def test_batched_result_equals_a_loop_over_images():
    torch.manual_seed(1)
    salience = torch.rand(2, 3, 6, 7)
    salience[0, 1] = 0.0
    segments = torch.randint(0, 4, (2, 3, 6, 7)) * 97  # sparse, non-contiguous ids
    weights = segment_weights(salience, segments, quantile=0.9)
    for b in range(2):
        for t in range(3):
            single = segment_weights(salience[b, t], segments[b, t], quantile=0.9)
            torch.testing.assert_close(weights[b, t], single)


def test_segment_mean_paths_agree_for_large_ids():
    torch.manual_seed(2)
    values = torch.rand(3, 16)
    small = torch.randint(0, 3, (3, 16))
    large = torch.tensor([0, 12345, 32767])[small]  # forces the compacted path
    torch.testing.assert_close(segment_mean(values, large), segment_mean(values, small))
    expected = torch.stack(
        [
            torch.stack([values[i][small[i] == small[i, j]].mean() for j in range(16)])
            for i in range(3)
        ]
    )
    torch.testing.assert_close(segment_mean(values, small), expected)


@pytest.mark.parametrize("dtype", [torch.int16, torch.uint8, torch.int64, torch.bool])
def test_any_integer_segment_dtype(dtype):
    segments = (SEGMENTS > 0) if dtype == torch.bool else SEGMENTS.to(dtype)
    reference = segment_weights(
        SALIENCE, (SEGMENTS > 0).long() if dtype == torch.bool else SEGMENTS
    )
    torch.testing.assert_close(segment_weights(SALIENCE, segments), reference)


def test_weights_are_constants():
    salience = SALIENCE.clone().requires_grad_(True)
    assert not segment_weights(salience, SEGMENTS).requires_grad


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="same|shape"):
        segment_weights(SALIENCE, SEGMENTS[:2])
    with pytest.raises(ValueError, match="integer ids"):
        segment_weights(SALIENCE, SEGMENTS.float())
    with pytest.raises(ValueError, match=">= 0"):
        segment_weights(SALIENCE, SEGMENTS.long() - 1)
    with pytest.raises(ValueError, match="alpha"):
        segment_weights(SALIENCE, None, alpha=1.5)
    with pytest.raises(ValueError, match="quantile"):
        segment_weights(SALIENCE, None, quantile=2.0)


@pytest.mark.parametrize("size", [1, 2, 5, 16, 4096])
@pytest.mark.parametrize("quantile", [0.0, 0.3, 0.5, 0.99, 1.0])
def test_per_image_quantile_matches_torch_quantile(size, quantile):
    values = torch.randn(4, size)
    torch.testing.assert_close(
        per_image_quantile(values, quantile), torch.quantile(values, quantile, dim=-1)
    )


def test_weight_statistics_by_hand():
    stats = weight_statistics(torch.tensor([[[1.5, 0.5]]]))
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert stats["weight_min"].item() == 0.5
    assert stats["weight_max"].item() == 1.5
    assert stats["weight_entropy"].item() == pytest.approx(entropy, rel=1e-6)
    assert weight_statistics(torch.ones(2, 3, 3))["weight_entropy"].item() == pytest.approx(1.0)
