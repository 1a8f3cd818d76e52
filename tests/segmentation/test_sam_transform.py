"""SAMSegmentation: ids, cache, batching, devices and error messages."""

from __future__ import annotations

import pytest
import torch
from torchrl.envs import TransformedEnv
from torchrl.testing.mocking_classes import ContinuousActionConvMockEnv

from torchrl_psp.keys import SEGMENTS_DTYPE
from torchrl_psp.segmentation import SAM_CHECKPOINT_URLS, SAMSegmentation, automatic_segments
from torchrl_psp.segmentation.testing import SyntheticPixelEnv

from .helpers import KEEP_ALL


def _transform(sam, **kwargs):
    options = {"points_per_side": 3, "device": "cpu", **KEEP_ALL, **kwargs}
    return SAMSegmentation(sam, **options)


def test_ids_and_spec(tiny_sam, frames):
    transform = _transform(tiny_sam)
    seg = transform.segment(frames)
    assert seg.shape == (3, 32, 32) and seg.dtype == SEGMENTS_DTYPE
    assert 0 <= seg.min() and seg.max() <= transform.max_segment_id(32, 32) == 27
    assert torch.equal(seg, automatic_segments(tiny_sam, frames, points_per_side=3, **KEEP_ALL))


def test_any_batch_shape(tiny_sam, frames):
    transform = _transform(tiny_sam)
    grid = frames[:2].reshape(2, 1, 32, 32, 3).expand(2, 2, 32, 32, 3)
    seg = transform.segment(grid)
    assert seg.shape == (2, 2, 32, 32)
    assert torch.equal(seg[:, 0], seg[:, 1])
    empty = transform.segment(frames[:0])
    assert empty.shape == (0, 32, 32) and empty.dtype == SEGMENTS_DTYPE


def test_cache_hits_are_free_and_equal(tiny_sam, frames, monkeypatch):
    transform = _transform(tiny_sam)
    calls = []
    original = transform._segment
    monkeypatch.setattr(transform, "_segment", lambda x: calls.append(x.shape[0]) or original(x))
    first = transform.segment(frames)
    assert calls == [3] and transform.cache.misses == 3
    again = transform.segment(frames.clone())
    assert calls == [3] and transform.cache.hits == 3
    assert torch.equal(first, again)
    # Repeats inside one batch are computed once.
    transform.cache.clear()
    calls.clear()
    repeated = transform.segment(torch.cat([frames[:1]] * 4 + [frames[1:2]]))
    assert calls == [2] and transform.cache.hits == 3
    assert torch.equal(repeated[0], repeated[3]) and torch.equal(repeated[0], first[0])


def test_cache_in_a_static_env(tiny_sam):
    transform = _transform(tiny_sam)
    env = TransformedEnv(SyntheticPixelEnv(size=32, static=True), transform)
    td = env.reset()
    td["action"] = torch.zeros(2)
    for _ in range(3):  # the square does not move: the same frame over and over
        td = env.step(td)["next"]
        td["action"] = torch.zeros(2)
    assert transform.cache.misses == 1 and transform.cache.hits == 3


def test_cache_disabled_and_lru_eviction(tiny_sam, frames):
    off = _transform(tiny_sam, cache_size=0)
    off.segment(frames)
    off.segment(frames)
    assert len(off.cache) == 0 and off.cache.hits == 0
    small = _transform(tiny_sam, cache_size=2)
    small.segment(frames)
    assert len(small.cache) == 2
    small.segment(frames[:1])  # evicted (least recently used)
    assert small.cache.hits == 0


@pytest.mark.parametrize("frames_per_batch", [1, 2])
def test_frame_batching_equals_one_by_one(tiny_sam, frames, frames_per_batch):
    batched = _transform(tiny_sam, frames_per_batch=8, cache_size=0).segment(frames)
    chunked = _transform(tiny_sam, frames_per_batch=frames_per_batch, cache_size=0)
    assert torch.equal(batched, chunked.segment(frames))
    singles = torch.stack([chunked.segment(f) for f in frames])
    assert torch.equal(batched, singles)


def test_encoder_input_size_option(frames):
    from torchrl_psp.segmentation import build_tiny_sam

    sam = build_tiny_sam(image_size=256)
    small = _transform(sam, encoder_input_size=64)
    assert small.segment(frames).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="multiple of 16"):
        _transform(sam, encoder_input_size=100)


def test_devices(tiny_sam, frames):
    transform = _transform(tiny_sam)
    assert transform.device.type == "cpu"
    out = transform.segment(frames)
    assert out.device == frames.device
    if torch.cuda.is_available():  # pragma: no cover - needs a GPU
        gpu = _transform(tiny_sam, device="cuda")
        assert gpu.device.type == "cuda"
        assert torch.equal(gpu.segment(frames.cuda()).cpu(), out)


def test_autocast_option_runs(tiny_sam, frames):
    """The bf16 autocast path (meant for CUDA) keeps the output contract on the CPU too."""
    seg = _transform(tiny_sam, amp_dtype=torch.bfloat16, cache_size=0).segment(frames)
    assert seg.dtype == SEGMENTS_DTYPE and seg.shape == (3, 32, 32) and seg.min() >= 0


def test_no_model_is_a_clear_error():
    with pytest.raises(ValueError) as err:
        SAMSegmentation(model_type="vit_b")
    assert SAM_CHECKPOINT_URLS["vit_b"] in str(err.value)
    with pytest.raises(FileNotFoundError, match="sam_vit_l_0b3195"):
        SAMSegmentation(model_type="vit_l", checkpoint="/nowhere/model.pth")


def test_bad_options(tiny_sam):
    with pytest.raises(ValueError, match="overlap"):
        _transform(tiny_sam, overlap="biggest")
    with pytest.raises(ValueError, match="points_per_side"):
        _transform(tiny_sam, points_per_side=0)
    with pytest.raises(ValueError, match="frames_per_batch"):
        _transform(tiny_sam, frames_per_batch=0)
    with pytest.raises(ValueError, match="same length"):
        _transform(tiny_sam, in_keys=["pixels"], out_keys=["a", "b"])


def test_wrong_pixels_name_the_key(tiny_sam):
    transform = _transform(tiny_sam)
    with pytest.raises(ValueError, match=r"'pixels'.*uint8.*\(1, 3, 32, 32\)"):
        transform.segment(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="'obs'"):
        transform.segment(torch.zeros(32, 32, 3), key="obs")


def test_float_chw_mock_env_spec_is_refused(tiny_sam):
    env = ContinuousActionConvMockEnv(pixel_shape=[3, 16, 16])
    with pytest.raises(ValueError, match=r"'pixels' as uint8 \(\*batch, H, W, 3\)"):
        TransformedEnv(env, _transform(tiny_sam)).observation_spec  # noqa: B018


def test_missing_key(tiny_sam):
    from tensordict import TensorDict

    transform = _transform(tiny_sam)
    with pytest.raises(KeyError, match="pixels"):
        transform(TensorDict({"other": torch.zeros(1)}, []))
    env = SyntheticPixelEnv(size=16)
    with pytest.raises(ValueError, match="'camera'"):
        TransformedEnv(env, _transform(tiny_sam, in_keys=["camera"])).observation_spec  # noqa: B018
