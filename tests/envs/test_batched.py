"""The transforms in ParallelEnv workers, outside batched envs, in collectors and replay buffers."""

import pytest
import torch
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.envs import ParallelEnv, SerialEnv, TransformedEnv
from torchrl.envs.utils import check_env_specs

from tests.envs.helpers import dmc_pixels, rollout_with_actions
from torchrl_psp.envs import (
    GroundTruthSegmentation,
    ReafferentBackground,
    VideoBackground,
    make_env,
)


def reafferent_gt_env():
    return make_env("cheetah", "run", distractor="reafferent", segmentation="gt")


def video_gt_env():
    return make_env("cheetah", "run", distractor="video", segmentation="gt", seed=3)


@pytest.mark.parametrize("make", [reafferent_gt_env, video_gt_env])
def test_parallel_env_workers_match_a_single_env(make):
    actions = torch.rand(4, 2, 6) * 2 - 1
    penv = ParallelEnv(2, make)
    try:
        check_env_specs(penv)
        parallel = rollout_with_actions(penv, actions)
    finally:
        penv.close()
    single_env = make()
    check_env_specs(single_env)  # the same resets as each worker: the same initial states
    single = rollout_with_actions(single_env, actions[:, 0])
    for key in ("pixels", "segments", "task_mask"):
        assert torch.equal(parallel[key][:, 0], single[key]), key


def test_parallel_env_outside():
    """Physics transforms must live in the workers; the colour key works outside too."""
    penv = ParallelEnv(2, dmc_pixels)
    try:
        env = TransformedEnv(penv, GroundTruthSegmentation())
        with pytest.raises(ValueError, match="inside each worker"):
            env.reset()
        env = TransformedEnv(penv, ReafferentBackground(compositing="colorkey"))
        td = env.rollout(2)
        assert td["next", "reafferent_state"][..., 0].tolist() == [[1, 2], [1, 2]]
    finally:
        penv.close()


def test_serial_env_outside_all_transforms():
    env = TransformedEnv(SerialEnv(2, dmc_pixels), GroundTruthSegmentation())
    env.append_transform(VideoBackground(seed=1))
    env.append_transform(ReafferentBackground())
    check_env_specs(env)
    td = env.rollout(3)
    assert td["next", "segments"].shape == (2, 3, 64, 64)
    assert td["next", "video_position"].shape == (2, 3, 1)
    # each sub-env draws its own video start frame
    start = td["video_position"][:, 0, 0]
    assert start[0] != start[1]
    assert torch.equal(td["next", "video_position"][:, :, 0], start[:, None] + torch.arange(1, 4))


def test_collector_and_replay_buffer_keep_every_entry():
    env = reafferent_gt_env()
    collector = Collector(env, policy=None, frames_per_batch=20, total_frames=40)
    buffer = ReplayBuffer(storage=LazyTensorStorage(100))
    batches = 0
    for batch in collector:
        buffer.extend(batch.reshape(-1))
        batches += 1
    collector.shutdown()
    assert batches == 2 and len(buffer) == 40
    sample = buffer.sample(8)
    assert sample["next", "pixels"].dtype == torch.uint8
    assert sample["next", "segments"].dtype == torch.int16
    assert sample["next", "task_mask"].dtype == torch.bool
    assert sample["next", "pixels"].shape == (8, 64, 64, 3)
    # states continue across collector batches
    steps = buffer[:]["next", "reafferent_state"][:, 0]
    assert steps.tolist() == list(range(1, 41))


def test_serial_env_inside_partial_reset_restarts_only_the_reset_env():
    env = SerialEnv(2, video_gt_env)
    td = env.reset()
    start = td["video_position"].clone()
    for _ in range(2):
        td = env.rand_step(td)["next"]
    td["_reset"] = torch.tensor([[False], [True]])
    td = env.reset(td)
    assert td["video_position"][0].item() == start[0].item() + 2
    restarted = td["video_position"][1].item()
    td = env.rand_step(td)["next"]
    assert td["video_position"].flatten().tolist() == [start[0].item() + 3, restarted + 1]
