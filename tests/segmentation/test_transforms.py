"""Every segmentation transform in TorchRL's settings (the checks TorchRL runs on its own).

Single env and ``check_env_specs``, batched env, ``SerialEnv``/``ParallelEnv`` with the
transform inside or outside, a collector, ``Compose``, a call without env and a replay
buffer.
"""

from __future__ import annotations

import functools

import pytest
import torch
from tensordict import TensorDict
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.envs import Compose, ParallelEnv, SerialEnv, TransformedEnv, check_env_specs

from torchrl_psp.keys import SEGMENTS_DTYPE
from torchrl_psp.segmentation import (
    ColorTaskMask,
    PerSAMSegmentation,
    SAMSegmentation,
    SuperpixelSegmentation,
    build_tiny_sam,
    reference_from_env,
)
from torchrl_psp.segmentation.testing import SyntheticPixelEnv

from .helpers import KEEP_ALL

SIZE = 24


@functools.cache
def _reference():
    return reference_from_env(SyntheticPixelEnv(size=SIZE, with_task_mask=True))


def make_sam(**kwargs):
    options = {"points_per_side": 2, "device": "cpu", **KEEP_ALL, **kwargs}
    return SAMSegmentation(build_tiny_sam(image_size=64), **options)


def make_persam(**kwargs):
    options = {"fine_tune_steps": 5, "device": "cpu", **kwargs}
    return PerSAMSegmentation(_reference(), sam=build_tiny_sam(image_size=64), **options)


def make_superpixels(**kwargs):
    return SuperpixelSegmentation(**kwargs)


def make_color(**kwargs):
    return ColorTaskMask(_reference(), **kwargs)


FACTORIES = {
    "sam": make_sam,
    "persam": make_persam,
    "superpixels": make_superpixels,
    "color": make_color,
}
OUT_KEY = {
    "sam": "segments",
    "persam": "task_mask",
    "superpixels": "segments",
    "color": "task_mask",
}


def _env_with(name: str):
    return TransformedEnv(SyntheticPixelEnv(size=SIZE), FACTORIES[name]())


def _check_output(td, name: str, batch: tuple[int, ...]):
    key = OUT_KEY[name]
    out = td[key]
    assert out.shape == (*batch, SIZE, SIZE)
    if key == "segments":
        assert out.dtype == SEGMENTS_DTYPE and out.min() >= 0
    else:
        assert out.dtype == torch.bool


@pytest.mark.parametrize("name", list(FACTORIES))
def test_single_env(name):
    env = _env_with(name)
    check_env_specs(env)
    td = env.rollout(3)
    _check_output(td, name, (3,))
    _check_output(td["next"], name, (3,))
    spec = env.observation_spec[OUT_KEY[name]]
    assert spec.is_in(td[OUT_KEY[name]][0])


@pytest.mark.parametrize("name", list(FACTORIES))
def test_batched_base_env(name):
    env = TransformedEnv(SyntheticPixelEnv(size=SIZE, batch_size=(2,)), FACTORIES[name]())
    check_env_specs(env)
    _check_output(env.rollout(2), name, (2, 2))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_serial_env_inside_and_outside(name):
    inside = SerialEnv(2, functools.partial(_env_with, name))
    check_env_specs(inside)
    _check_output(inside.rollout(2), name, (2, 2))
    outside = TransformedEnv(
        SerialEnv(2, functools.partial(SyntheticPixelEnv, size=SIZE)), FACTORIES[name]()
    )
    check_env_specs(outside)
    _check_output(outside.rollout(2), name, (2, 2))


@pytest.mark.parametrize("name", ["sam", "persam"])
def test_parallel_env_inside_and_outside(name):
    inside = ParallelEnv(2, functools.partial(_env_with, name), mp_start_method="fork")
    try:
        check_env_specs(inside)
        _check_output(inside.rollout(2), name, (2, 2))
    finally:
        inside.close()
    outside = TransformedEnv(
        ParallelEnv(2, functools.partial(SyntheticPixelEnv, size=SIZE), mp_start_method="fork"),
        FACTORIES[name](),
    )
    try:
        check_env_specs(outside)
        _check_output(outside.rollout(2), name, (2, 2))
    finally:
        outside.close()


@pytest.mark.parametrize("name", ["sam", "color"])
def test_collector(name):
    collector = Collector(_env_with(name), policy=None, frames_per_batch=4, total_frames=8)
    batches = list(collector)
    collector.shutdown()
    assert len(batches) == 2
    _check_output(batches[0]["next"], name, (4,))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_compose_and_no_env_call(name):
    transform = Compose(FACTORIES[name]())
    pixels = SyntheticPixelEnv(size=SIZE, batch_size=(3,)).reset()["pixels"]
    td = transform(TensorDict({"pixels": pixels}, batch_size=[3]))
    _check_output(td, name, (3,))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_replay_buffer(name):
    data = TransformedEnv(SyntheticPixelEnv(size=SIZE), Compose()).rollout(6)
    transform = FACTORIES[name](
        in_keys=["pixels", ("next", "pixels")], out_keys=[OUT_KEY[name], ("next", OUT_KEY[name])]
    )
    buffer = ReplayBuffer(storage=LazyTensorStorage(10), transform=transform, batch_size=4)
    buffer.extend(data)
    sample = buffer.sample()
    _check_output(sample, name, (4,))
    _check_output(sample["next"], name, (4,))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_same_specs_as_ground_truth(name):
    """The learned outputs have the GT transform's key, dtype and shape (so every loss
    takes either)."""
    from torchrl_psp.keys import segments_spec, task_mask_spec

    spec = _env_with(name).observation_spec[OUT_KEY[name]]
    gt = (segments_spec if OUT_KEY[name] == "segments" else task_mask_spec)((SIZE, SIZE))
    assert spec.dtype == gt.dtype and spec.shape == gt.shape and type(spec) is type(gt)


def test_model_stays_where_it_is_and_out_of_state_dict():
    transform = make_sam()
    env = TransformedEnv(SyntheticPixelEnv(size=SIZE), transform)
    env.to("cpu")
    assert transform.device.type == "cpu"
    assert not any("image_encoder" in k for k in transform.state_dict())
    assert not any("image_encoder" in k for k in make_persam().state_dict())


@pytest.mark.parametrize("name", ["sam", "persam"])
def test_real_dmc_env(name):
    """In ``make_env`` after a distractor, with check_env_specs, next to the GT keys."""
    envs = pytest.importorskip("torchrl_psp.envs")
    if name == "sam":
        transform = make_sam(out_keys=["sam_segments"])
    else:
        gt_env = envs.make_env("walker", "walk", distractor="reafferent", segmentation="gt")
        transform = PerSAMSegmentation(
            reference_from_env(gt_env),
            sam=build_tiny_sam(image_size=64),
            fine_tune_steps=5,
            device="cpu",
            out_keys=["persam_mask"],
        )
    env = envs.make_env(
        "walker", "walk", distractor="reafferent", segmentation="gt", seed=2
    ).append_transform(transform)
    check_env_specs(env)
    td = env.rollout(3)
    out, gt = td["next", transform.out_keys[0]], td["next", OUT_KEY[name]]
    assert out.shape == gt.shape == (3, 64, 64) and out.dtype == gt.dtype
