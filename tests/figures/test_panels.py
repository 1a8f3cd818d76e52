"""The papers' image panels: reconstruction (PSP Figs. 5, 7) and SD masks (SD Fig. 3a)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from torchrl_psp.figures.panels import (
    DIFF_CMAP,
    TITLE_HEIGHT,
    reconstruction_panel,
    sd_mask_panel,
)

H, W, SCALE, PAD = 8, 12, 2, 2
TILE_H, TILE_W = H * SCALE, W * SCALE


def tile(panel: np.ndarray, row: int, column: int, titles: bool = False) -> np.ndarray:
    """The (row, column) tile of a panel laid out with SCALE and PAD."""
    top = TITLE_HEIGHT if titles else 0
    y, x = top + row * (TILE_H + PAD), column * (TILE_W + PAD)
    return panel[y : y + TILE_H, x : x + TILE_W]


def up(image: np.ndarray) -> np.ndarray:
    return image.repeat(SCALE, 0).repeat(SCALE, 1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.fixture
def frames() -> torch.Tensor:
    return torch.randint(0, 256, (5, 3, H, W), generator=torch.Generator().manual_seed(0)).to(
        torch.uint8
    )


def test_reconstruction_panel_size_follows_rows_and_columns(frames):
    recon = frames.float() / 255
    weights = torch.rand(5, H, W)
    kwargs = {"scale": SCALE, "pad": PAD, "titles": False}
    full = reconstruction_panel(frames, recon, weights, **kwargs)
    assert full.dtype == np.uint8
    assert full.shape == (4 * (TILE_H + PAD) - PAD, 4 * (TILE_W + PAD) - PAD, 3)  # max_rows=4
    no_weights = reconstruction_panel(frames, recon, **kwargs)
    assert no_weights.shape == (full.shape[0], 3 * (TILE_W + PAD) - PAD, 3)
    two = reconstruction_panel(frames, recon, max_rows=2, **kwargs)
    assert two.shape[0] == 2 * (TILE_H + PAD) - PAD
    one = reconstruction_panel(frames[:1], recon[:1], **kwargs)
    assert one.shape[0] == TILE_H
    titled = reconstruction_panel(frames, recon, weights, scale=SCALE, pad=PAD)
    assert titled.shape == (full.shape[0] + TITLE_HEIGHT, full.shape[1], 3)
    assert (titled[:TITLE_HEIGHT] < 128).any()  # some title text was drawn
    assert np.array_equal(titled[TITLE_HEIGHT:], full)


def test_true_and_reconstruction_columns_hold_the_pixels(frames):
    recon = frames.float() / 255
    recon[0, :, 0, 0] = 1.7  # out of range: clipped for display
    recon[0, :, 0, 1] = -0.4
    panel = reconstruction_panel(frames, recon, scale=SCALE, pad=PAD, titles=False)
    for k in range(4):
        assert np.array_equal(tile(panel, k, 0), up(frames[k].permute(1, 2, 0).numpy()))
    shown = tile(panel, 0, 1)
    assert (shown[:SCALE, :SCALE] == 255).all() and (shown[:SCALE, SCALE : 2 * SCALE] == 0).all()
    # uint8 and float inputs, channels-first and channels-last, give the same panel
    as_float = reconstruction_panel(frames.float() / 255, recon, titles=False)
    channels_last = reconstruction_panel(frames.permute(0, 2, 3, 1).numpy(), recon, titles=False)
    assert np.array_equal(as_float, reconstruction_panel(frames, recon, titles=False))
    assert np.array_equal(channels_last, as_float)


def test_difference_is_neutral_where_reconstruction_is_exact_and_signed_elsewhere(frames):
    neutral = np.round(np.array(matplotlib.colormaps[DIFF_CMAP](0.5)[:3]) * 255)
    images = frames.float() / 255
    exact = reconstruction_panel(frames, images, scale=SCALE, pad=PAD, titles=False)
    difference = tile(exact, 0, 2).reshape(-1, 3).astype(float)
    assert np.abs(difference - neutral).max() <= 1
    assert np.ptp(neutral) <= 6  # a grey: no hue at 0

    images = torch.full((1, 3, H, W), 0.5)
    recon = images.clone()
    recon[0, :, 0, 0] = 0.2  # true > reconstruction: positive difference
    recon[0, :, 0, 1] = 0.8  # true < reconstruction: negative
    panel = reconstruction_panel(images, recon, scale=SCALE, pad=PAD, titles=False)
    difference = tile(panel, 0, 2)
    assert np.abs(difference[-1, -1].astype(float) - neutral).max() <= 1  # unchanged pixel
    positive, negative = difference[0, 0].astype(int), difference[0, SCALE].astype(int)
    assert positive[0] > positive[2] + 50  # red end of the diverging map
    assert negative[2] > negative[0] + 50  # blue end
    # the default range is symmetric around 0: both ends are equally saturated
    assert np.array_equal(positive, matplotlib_rgb(DIFF_CMAP, 1.0))
    assert np.array_equal(negative, matplotlib_rgb(DIFF_CMAP, 0.0))


def matplotlib_rgb(cmap: str, value: float) -> np.ndarray:
    return np.round(np.array(matplotlib.colormaps[cmap](value)[:3]) * 255).astype(int)


def test_weight_heatmap_is_monotone_in_the_weight():
    images = torch.zeros(2, 3, H, W)
    weights = torch.arange(W, dtype=torch.float32).expand(2, H, W).clone()  # grows with x
    weights[1] *= 0.5
    panel = reconstruction_panel(images, images, weights, scale=SCALE, pad=PAD, titles=False)
    first = luminance(tile(panel, 0, 3))[0, ::SCALE]  # one value per weight column
    assert np.all(np.diff(first) > 0)
    second = luminance(tile(panel, 1, 3))[0, ::SCALE]
    assert np.all(np.diff(second) > 0)
    # one colour scale for the whole panel: weight w looks the same in both rows
    assert np.allclose(second[2], first[1], atol=1e-9)
    assert np.all(second[1:] < first[1:])
    # a fixed range is honoured: the largest weight of row 0 is the top of the map
    fixed = reconstruction_panel(
        images, images, weights, weight_range=(0.0, 22.0), scale=SCALE, pad=PAD, titles=False
    )
    assert luminance(tile(fixed, 0, 3))[0, -1] < first[-1]


def test_panels_reject_mismatched_shapes(frames):
    with pytest.raises(ValueError, match="reconstructions"):
        reconstruction_panel(frames, torch.rand(5, 3, H, W + 1))
    with pytest.raises(ValueError, match="weights"):
        reconstruction_panel(frames, frames, torch.rand(5, H + 1, W))
    with pytest.raises(ValueError, match="colour channels"):
        reconstruction_panel(torch.rand(2, 4, H, W), torch.rand(2, 4, H, W))


def test_sd_mask_panel_columns_and_values(frames):
    masks = torch.zeros(5, H, W, dtype=torch.bool)
    masks[:, :, : W // 2] = True
    targets = frames * masks[:, None]
    recon = frames.float() / 255
    predicted = torch.full((5, H, W), 0.5)
    filters = ~masks
    kwargs = {"scale": SCALE, "pad": PAD, "titles": False}
    minimal = sd_mask_panel(frames, targets, recon, **kwargs)
    assert minimal.shape[1] == 3 * (TILE_W + PAD) - PAD
    full = sd_mask_panel(frames, targets, recon, predicted, filters, masks, max_rows=3, **kwargs)
    assert full.shape == (3 * (TILE_H + PAD) - PAD, 6 * (TILE_W + PAD) - PAD, 3)
    # true | segmenter mask | target | reconstruction | predicted mask | filter
    assert np.array_equal(tile(full, 1, 0), up(frames[1].permute(1, 2, 0).numpy()))
    segmenter = tile(full, 1, 1)
    assert (segmenter[:, : TILE_W // 2] == 255).all() and (segmenter[:, TILE_W // 2 :] == 0).all()
    assert np.array_equal(tile(full, 1, 2), up(targets[1].permute(1, 2, 0).numpy()))
    assert np.array_equal(tile(full, 1, 3), tile(full, 1, 0))
    assert np.abs(tile(full, 1, 4).astype(int) - 128).max() <= 1  # p = 0.5: mid grey
    assert np.array_equal(tile(full, 1, 5), 255 - segmenter)
    only_predicted = sd_mask_panel(frames, targets, recon, predicted_masks=predicted, **kwargs)
    assert np.array_equal(tile(only_predicted, 0, 3), tile(full, 0, 4))
