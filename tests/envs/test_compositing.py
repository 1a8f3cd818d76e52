"""The three compositing modes, and bad pixel input."""

import numpy as np
import pytest
import torch
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import check_env_specs
from torchrl.testing.mocking_classes import ContinuousActionConvMockEnv

from tests.envs.helpers import with_transform
from torchrl_psp.envs import ReafferentBackground, colorkey_mask, make_env, renderer_for


def _raw_and_segmentation(env):
    renderer = renderer_for(env.base_env._env.physics)
    return torch.from_numpy(renderer.rgb(64, 64, 0)), renderer.segmentation(64, 64, 0)


def test_colorkey_rule():
    pixels = torch.tensor(
        [[[0, 0, 1], [1, 1, 1], [5, 9, 9], [9, 5, 9], [0, 0, 0], [200, 100, 201], [100, 200, 201]]],
        dtype=torch.uint8,
    )
    assert colorkey_mask(pixels).tolist() == [[True, False, False, False, False, True, True]]


@pytest.mark.parametrize("replace_floor", [False, True])
def test_segmentation_compositing_overwrites_exactly_the_background(replace_floor):
    env = with_transform(ReafferentBackground(replace_floor=replace_floor))
    td = env.rollout(3)["next"][-1]
    raw, seg = _raw_and_segmentation(env)
    physics = env.base_env._env.physics
    floor = physics.model.name2id("ground", "geom")
    background = seg[..., 0] == -1
    if replace_floor:
        background |= (seg[..., 0] == floor) & (seg[..., 1] == 5)
    background = torch.from_numpy(background)
    expected = env.transform.background_image(3, td.get("reafferent_state")[1] * 0.5 - 0.75)
    assert torch.equal(td["pixels"][background], expected[background])
    assert torch.equal(td["pixels"][~background], raw[~background])
    # the floor really is in the picture, and replaced only on request
    floor_pixels = torch.from_numpy((seg[..., 0] == floor) & (seg[..., 1] == 5))
    assert floor_pixels.sum() > 100
    assert torch.equal(td["pixels"][floor_pixels], raw[floor_pixels]) != replace_floor


def test_colorkey_compositing():
    env = with_transform(ReafferentBackground(compositing="colorkey"))
    td = env.reset()
    raw, _ = _raw_and_segmentation(env)
    mask = colorkey_mask(raw)
    expected = env.transform.background_image(0, 0.0)
    assert torch.equal(td["pixels"][mask], expected[mask])
    assert torch.equal(td["pixels"][~mask], raw[~mask])
    assert mask.float().mean() > 0.5  # DMC's sky and floor are blue


def test_skybox_compositing_uses_the_texture():
    env = make_env(
        "cheetah", "run", distractor="reafferent", segmentation="gt", compositing="skybox"
    )
    check_env_specs(env)
    physics = env.base_env._env.physics
    sky = int(np.flatnonzero(np.asarray(physics.model.tex_type) == 2)[0])
    assert physics.model.tex_width[sky] == 64  # make_env shrank the 800-pixel skybox
    assert physics.model.mat_rgba[physics.model.name2id("grid", "material"), 3] == pytest.approx(
        0.3
    )
    td = env.rollout(4)["next"]
    # the frame is a render: agent pixels keep the agent's colours, the sky changes
    sky_pixels = td["segments"][-1] == 0
    changes = (td["pixels"][-1].int() - td["pixels"][-2].int()).abs().sum(-1)
    assert changes[sky_pixels].float().mean() > 20
    plain = make_env("cheetah", "run", segmentation="gt").reset()
    assert not torch.equal(plain["pixels"], env.reset()["pixels"])


def test_bad_pixels():
    chw = TransformedEnv(
        ContinuousActionConvMockEnv(pixel_shape=[3, 64, 64]),
        ReafferentBackground(compositing="colorkey"),
    )
    with pytest.raises(ValueError, match=r"'pixels'.*\(\*batch, H, W, 3\)"):
        chw.reset()
    env = with_transform(ReafferentBackground(pixels_key="rgb"))
    with pytest.raises(ValueError, match="'rgb'"):
        env.reset()
