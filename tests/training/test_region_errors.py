"""The agent / background reconstruction errors logged at each evaluation (PSP Fig. 5's
mechanism, measured): values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from torchrl_psp.training.evaluation import (
    episode_region_errors,
    region_reconstruction_errors,
)


def test_errors_inside_and_outside_the_mask_by_hand():
    # two frames of 2x2 pixels; the agent covers pixel (0, 0) of frame 0 and (1, 1) of frame 1
    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    images[0, :, 0, 0] = 255  # white agent pixel
    reconstructions = torch.zeros(2, 3, 2, 2)
    reconstructions[0, :, 0, 0] = torch.tensor([1.0, 0.5, 0.5])  # errors 0, .25, .25 -> 1/6
    reconstructions[1, 0, 1, 1] = 0.3  # agent pixel of frame 1: (0.09 + 0 + 0) / 3 = 0.03
    reconstructions[0, :, 1, 0] = 0.2  # a background pixel: 0.04
    reconstructions[1, :, 0, 1] = -0.1  # another (not clipped): 0.01
    mask = torch.zeros(2, 2, 2, dtype=torch.bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True
    errors = region_reconstruction_errors(images, reconstructions, mask)
    assert math.isclose(errors["agent"], (1 / 6 + 0.03) / 2, rel_tol=1e-6)
    # 6 background pixels: two with an error, four exact
    assert math.isclose(errors["background"], (0.04 + 0.01) / 6, rel_tol=1e-6)
    # float images on [0, 1] give the same numbers as uint8 ones
    again = region_reconstruction_errors(images.float() / 255, reconstructions, mask)
    assert again == pytest.approx(errors)


def test_an_empty_region_is_nan_and_bad_shapes_are_named():
    images = torch.zeros(1, 3, 2, 2)
    everywhere = torch.ones(1, 2, 2, dtype=torch.bool)
    errors = region_reconstruction_errors(images, images + 0.5, everywhere)
    assert errors["agent"] == pytest.approx(0.25) and math.isnan(errors["background"])
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\).*\(1, 3, 2, 2\) and \(1, 3, 2\)"):
        region_reconstruction_errors(images, images[..., 0], everywhere)
    with pytest.raises(ValueError, match=r"task_mask must be .*\(1, 2, 2\).*got \(2, 2\)"):
        region_reconstruction_errors(images, images, everywhere[0])


def _episode(with_mask: bool) -> TensorDict:
    pixels = torch.zeros(3, 3, 2, 2, dtype=torch.uint8)  # 3 steps, black frames
    nxt = {"pixels": pixels}
    if with_mask:
        mask = torch.zeros(3, 2, 2, dtype=torch.bool)
        mask[:, 0, 0] = True  # the agent: pixel (0, 0) of every frame
        nxt["task_mask"] = mask
    return TensorDict({"next": nxt}, batch_size=[3])


def _world_model() -> TensorDictModule:
    # "reconstructs" every pixel as 0.1 except pixel (0, 0), reconstructed as 0.5
    def reconstruct(pixels: torch.Tensor) -> torch.Tensor:
        out = torch.full(pixels.shape, 0.1)
        out[..., 0, 0] = 0.5
        return out

    return TensorDictModule(
        reconstruct, in_keys=[("next", "pixels")], out_keys=[("next", "reco_pixels")]
    )


def test_episode_errors_run_the_world_model_over_the_whole_episode():
    errors = episode_region_errors(_world_model(), _episode(True), torch.device("cpu"))
    assert errors == pytest.approx({"agent": 0.25, "background": 0.01})
    # no task mask in the episode (env.segmentation=none): nothing, no failure
    assert episode_region_errors(_world_model(), _episode(False), torch.device("cpu")) == {}
    # a world model without decoder (DreamerPro): nothing either
    no_decoder = TensorDictModule(
        lambda pixels: pixels.float(), in_keys=[("next", "pixels")], out_keys=[("next", "x")]
    )
    assert episode_region_errors(no_decoder, _episode(True), torch.device("cpu")) == {}
