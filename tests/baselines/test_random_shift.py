"""RandomShift (DrQ-v2's augmentation): hand-checked crops, one shift per image, specs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import check_env_specs
from torchrl.testing.mocking_classes import ContinuousActionConvMockEnv

from torchrl_psp.baselines import RandomShift, shift_images


def test_a_shift_by_hand():
    """3x3 image 0..8, pad 1: every crop of the replicate-padded 5x5 image, written out."""
    image = torch.arange(9.0).view(1, 1, 3, 3)
    expected = {
        (1, 1): [[0, 1, 2], [3, 4, 5], [6, 7, 8]],  # centre: unchanged
        (0, 0): [[0, 0, 1], [0, 0, 1], [3, 3, 4]],  # content one pixel down and right
        (2, 2): [[4, 5, 5], [7, 8, 8], [7, 8, 8]],  # one pixel up and left
        (0, 2): [[1, 2, 2], [1, 2, 2], [4, 5, 5]],
        (2, 1): [[3, 4, 5], [6, 7, 8], [6, 7, 8]],
    }
    for (dy, dx), rows in expected.items():
        out = shift_images(image, torch.tensor([[dy, dx]]), pad=1)
        torch.testing.assert_close(out[0, 0], torch.tensor(rows, dtype=torch.float32))


def test_bilinear_shift_equals_the_integer_crop_of_the_padded_image():
    torch.manual_seed(0)
    images = torch.rand(1, 2, 6, 5) * 255
    padded = F.pad(images, (2, 2, 2, 2), mode="replicate")
    for dy in range(5):
        for dx in range(5):
            out = shift_images(images, torch.tensor([[dy, dx]]), pad=2)
            # float32 rounding of the sampling coordinates only
            torch.testing.assert_close(
                out, padded[..., dy : dy + 6, dx : dx + 5], atol=1e-3, rtol=0
            )


def test_each_image_gets_one_shift_for_all_its_channels():
    torch.manual_seed(1)
    base = torch.rand(16, 1, 12, 12) * 100
    stack = torch.cat([base, base + 1000.0, base + 2000.0], dim=1)  # 3 channels, one image
    out = RandomShift(pad=3, in_keys=["x"])(TensorDict(x=stack.clone(), batch_size=[16]))["x"]
    torch.testing.assert_close(
        out[:, 1] - out[:, 0], torch.full_like(out[:, 0], 1000.0), atol=1e-2, rtol=0
    )
    torch.testing.assert_close(
        out[:, 2] - out[:, 0], torch.full_like(out[:, 0], 2000.0), atol=1e-2, rtol=0
    )
    padded = F.pad(stack, (3, 3, 3, 3), mode="replicate")
    shifts = []
    for i in range(16):  # every output is one of the 49 crops
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if torch.allclose(out[i], padded[i, :, dy : dy + 12, dx : dx + 12], atol=1e-2, rtol=0)
        ]
        assert matches, i
        shifts.append(matches[0])
    assert len(set(shifts)) > 4  # offsets are drawn per image


def test_keys_uint8_leading_dims_and_errors():
    data = TensorDict(
        {
            "pixels": torch.randint(0, 256, (2, 3, 3, 8, 8), dtype=torch.uint8),
            ("next", "pixels"): torch.randint(0, 256, (2, 3, 3, 8, 8), dtype=torch.uint8),
        },
        [2, 3],
    )
    out = RandomShift(pad=0)(data.clone())  # pad 0: the identity, as float
    assert out["pixels"].dtype == torch.float32 and out["next", "pixels"].shape == (2, 3, 3, 8, 8)
    torch.testing.assert_close(out["pixels"], data["pixels"].float())
    with pytest.raises(ValueError, match="pad must be an integer >= 0"):
        RandomShift(pad=-1)
    with pytest.raises(ValueError, match=r"shifts must have shape \(1, 2\)"):
        shift_images(torch.zeros(1, 1, 4, 4), torch.zeros(2, 2, dtype=torch.long), pad=1)
    with pytest.raises(ValueError, match="RandomShift reads images"):
        RandomShift(in_keys=["x"])(TensorDict(x=torch.zeros(4, 4), batch_size=[]))


def test_in_an_env_and_in_a_replay_buffer():
    env = TransformedEnv(
        ContinuousActionConvMockEnv(pixel_shape=[3, 16, 16]), RandomShift(2, in_keys=["pixels"])
    )
    check_env_specs(env)
    assert env.observation_spec["pixels"].dtype == torch.float32
    buffer = ReplayBuffer(storage=LazyTensorStorage(8), transform=RandomShift(1, in_keys=["obs"]))
    buffer.extend(
        TensorDict(obs=torch.randint(0, 256, (8, 3, 6, 6), dtype=torch.uint8), batch_size=[8])
    )
    assert buffer.sample(4)["obs"].dtype == torch.float32
