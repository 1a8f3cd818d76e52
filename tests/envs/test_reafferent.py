"""ReafferentBackground: SPEC §1 values, determinism, specs and batching."""

import hashlib

import pytest
import torch
from torchrl.envs import SerialEnv, TransformedEnv
from torchrl.envs.utils import check_env_specs

from tests.envs.helpers import dmc_pixels, rollout_with_actions, with_transform
from torchrl_psp.envs import ReafferentBackground, reafferent_grids, renderer_for

# sha256 of reafferent_grids(seed=0): the grids must be the same on every machine.
GRIDS_SHA256 = "a2bdb3817f54ba7adc9f569316eab50086c1f16850f941111dd2802cebe345bd"


def test_grids_are_fixed_by_the_seed():
    grids = reafferent_grids(seed=0)
    assert grids.shape == (625, 4, 16, 16, 3)
    assert grids.dtype == torch.uint8
    assert hashlib.sha256(grids.numpy().tobytes()).hexdigest() == GRIDS_SHA256
    assert grids[0, 0, 0, 0].tolist() == [95, 130, 194]
    assert not torch.equal(reafferent_grids(seed=1), grids)
    # 2,500 distinct grids
    assert torch.unique(grids.reshape(2500, -1), dim=0).shape[0] == 2500


def test_action_bins_are_equal_width_over_the_action_range():
    transform = ReafferentBackground(action_low=-1.0, action_high=1.0)
    actions = torch.tensor([-1.0, -0.75, -0.5, -0.01, 0.0, 0.49, 0.5, 0.99, 1.0, 3.0, -3.0])
    expected = [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 0]
    assert transform.action_bin(actions[:, None]).tolist() == expected
    # only the first action dimension counts
    assert transform.action_bin(torch.tensor([0.6, -1.0, -1.0])).item() == 3
    shifted = ReafferentBackground(action_low=0.0, action_high=4.0)
    assert shifted.action_bin(torch.tensor([[0.5], [1.5], [2.5], [3.5]])).flatten().tolist() == [
        0,
        1,
        2,
        3,
    ]


def test_background_is_nearest_upsampled_grid():
    transform = ReafferentBackground(action_low=-1.0, action_high=1.0)
    image = transform.background_image(step=630, previous_action=[0.7], height=64, width=64)
    grid = transform.grids[630 % 625, 3]
    # each grid cell covers a 4x4 block
    assert torch.equal(image[::4, ::4], grid)
    assert torch.equal(image, grid.repeat_interleave(4, 0).repeat_interleave(4, 1))
    # non-divisible sizes still use nearest (floor) sampling
    odd = transform.background_image(step=1, previous_action=[-1.0], height=24, width=40)
    rows = torch.arange(24) * 16 // 24
    cols = torch.arange(40) * 16 // 40
    assert torch.equal(odd, transform.grids[1, 0][rows][:, cols])


def _background_pixels(env, td):
    """Boolean mask of the pixels that show the skybox in the current physics state."""
    physics = env.base_env._env.physics
    seg = renderer_for(physics).segmentation(64, 64, 0)
    return torch.from_numpy(seg[..., 0] == -1)


def test_frames_show_grid_of_time_and_previous_action():
    env = with_transform(ReafferentBackground())
    transform = env.transform
    td = env.reset()
    mask = _background_pixels(env, td)
    assert mask.any()
    expected = transform.background_image(0, 0.0)  # a_{-1} = 0 at reset
    assert torch.equal(td["pixels"][mask], expected[mask])
    actions = torch.tensor([[-0.9] * 6, [0.9] * 6, [0.1] * 6, [-0.4] * 6])
    for t, action in enumerate(actions, start=1):
        td["action"] = action
        td = env.step(td)["next"]
        mask = _background_pixels(env, td)
        expected = transform.background_image(t, action)
        assert torch.equal(td["pixels"][mask], expected[mask])
        assert td["reafferent_state"].tolist() == [t, transform.action_bin(action).item()]
        # non-background pixels are the raw render
        raw = renderer_for(env.base_env._env.physics).rgb(64, 64, 0)
        assert torch.equal(td["pixels"][~mask], torch.from_numpy(raw)[~mask])


def test_time_index_wraps_around():
    transform = ReafferentBackground(num_time_steps=3, action_low=-1, action_high=1)
    for step in range(7):
        assert torch.equal(
            transform.background_image(step, 0.3, 16, 16),
            transform.background_image(step % 3, 0.3, 16, 16),
        )


def test_same_actions_same_frames_different_actions_different_frames():
    torch.manual_seed(0)
    actions = torch.rand(6, 6) * 2 - 1
    first = rollout_with_actions(with_transform(ReafferentBackground()), actions)
    second = rollout_with_actions(with_transform(ReafferentBackground()), actions)
    assert torch.equal(first["pixels"], second["pixels"])
    other = actions.clone()
    other[:, 0] = -other[:, 0].sign() * 0.9  # other bins of the first dimension
    third = rollout_with_actions(with_transform(ReafferentBackground()), other)
    assert not torch.equal(first["pixels"], third["pixels"])
    # a different grid seed is a different environment
    fourth = rollout_with_actions(with_transform(ReafferentBackground(seed=3)), actions)
    assert not torch.equal(first["pixels"], fourth["pixels"])


def test_specs_and_rollout():
    env = with_transform(ReafferentBackground())
    check_env_specs(env)
    td = env.rollout(4)
    assert td["next", "reafferent_state"][:, 0].tolist() == [1, 2, 3, 4]
    assert td["reafferent_state"][0].tolist() == [0, 2]


@pytest.mark.parametrize("compositing", ["segmentation", "colorkey"])
def test_serial_env_outside_with_partial_reset(compositing):
    env = TransformedEnv(SerialEnv(2, dmc_pixels), ReafferentBackground(compositing=compositing))
    check_env_specs(env)
    td = env.reset()
    for _ in range(3):
        td = env.rand_step(td)["next"]
    assert td["reafferent_state"][:, 0].tolist() == [3, 3]
    td["_reset"] = torch.tensor([[True], [False]])
    td = env.reset(td)
    assert td["reafferent_state"][:, 0].tolist() == [0, 3]
    td = env.rand_step(td)["next"]
    assert td["reafferent_state"][:, 0].tolist() == [1, 4]


def test_bad_arguments():
    with pytest.raises(ValueError, match="compositing"):
        ReafferentBackground(compositing="chroma")
    with pytest.raises(ValueError, match="action_low"):
        ReafferentBackground(action_low=-1.0)
    with pytest.raises(ValueError, match="must exceed"):
        ReafferentBackground(action_low=1.0, action_high=-1.0)
    with pytest.raises(RuntimeError, match="inside an env"):
        ReafferentBackground()(torch.zeros(1))
