"""n-step transitions from replayed windows, and the TD target the loss builds from them."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from torchrl_psp.baselines import nstep_transitions


def window(rewards, terminated_last=False, done_at=None):
    """One window of 5 steps (frame stack 3, n 3); frame j is an image filled with j."""
    length = len(rewards)
    frames = (
        torch.arange(length, dtype=torch.float32)
        .view(1, length, 1, 1, 1)
        .expand(1, length, 1, 2, 2)
    )
    done = torch.zeros(1, length, 1, dtype=torch.bool)
    terminated = torch.zeros(1, length, 1, dtype=torch.bool)
    done[0, -1] = terminated[0, -1] = terminated_last
    if done_at is not None:
        done[0, done_at] = True
    return TensorDict(
        {
            "pixels": frames.clone(),
            ("next", "pixels"): frames + 1,
            "action": torch.arange(length, dtype=torch.float32).view(1, length, 1) / 10,
            ("next", "reward"): torch.tensor(rewards, dtype=torch.float32).view(1, length, 1),
            ("next", "done"): done,
            ("next", "terminated"): terminated,
        },
        [1, length],
    )


def test_nstep_reward_stacks_and_flags_by_hand():
    out = nstep_transitions(
        window([9.0, 9.0, 1.0, 2.0, 3.0], terminated_last=True), n_step=3, frame_stack=3, gamma=0.5
    )
    # the transition is step t=2: frames 0, 1, 2 stacked; next stack = frames 3, 4, 5
    assert out["stacked_pixels"][0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert out["next", "stacked_pixels"][0, :, 0, 0].tolist() == [3.0, 4.0, 5.0]
    assert out["action"].tolist() == [[pytest.approx(0.2)]]
    assert out["next", "reward"].item() == pytest.approx(1.0 + 0.5 * 2.0 + 0.25 * 3.0)  # 2.75
    assert out["steps_to_next_obs"].item() == 3
    assert out["next", "terminated"].item() and out["next", "done"].item()


def test_windows_that_cross_an_episode_or_have_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="before the last step of a window"):
        nstep_transitions(window([0.0] * 5, done_at=2), n_step=3, frame_stack=3, gamma=0.9)
    with pytest.raises(ValueError, match=r"windows \[B, 5\]"):
        nstep_transitions(window([0.0] * 4), n_step=3, frame_stack=3, gamma=0.9)


def test_td_target_bootstraps_with_gamma_to_the_n():
    """TorchRL's TD(0) estimator, as the loss configures it: y = R_n + gamma^n (1 - d) V."""
    from torchrl.data import Bounded

    from torchrl_psp.baselines import DrQv2Loss, make_drqv2

    agent = make_drqv2(Bounded(-1, 1, (1,)), (3, 16, 16), hidden_dim=4)
    loss = DrQv2Loss(
        agent.encoder, agent.actor, agent.critic, 0.0, action_spec=Bounded(-1, 1, (1,)), gamma=0.9
    )
    data = TensorDict(
        {
            ("next", "reward"): torch.tensor([[2.75], [1.0]]),
            ("next", "done"): torch.tensor([[False], [True]]),
            ("next", "terminated"): torch.tensor([[False], [True]]),
            "steps_to_next_obs": torch.tensor([[3], [3]]),
        },
        [2],
    )
    target = loss._value_estimator.value_estimate(data, next_value=torch.tensor([[10.0], [10.0]]))
    torch.testing.assert_close(target, torch.tensor([[2.75 + 0.729 * 10.0], [1.0]]))


def test_the_learner_stacks_the_frames_the_policy_acted_on():
    """The stack rebuilt from replayed single frames equals the env's ``CatFrames`` stack
    at the same step, for the observation and the bootstrap observation."""
    from torchrl_psp.baselines.drqv2_trainer import make_drqv2_env

    from ..study.test_studies import _composed

    cfg = _composed(["preset=smoke", "variant=drqv2"])
    env = make_drqv2_env(cfg.env, cfg.segmenter, seed=0, frame_stack=3)
    rollout = env.rollout(7)
    for start in (0, 2):  # a window that starts at the reset and a later one
        out = nstep_transitions(
            rollout[start : start + 5].unsqueeze(0), n_step=3, frame_stack=3, gamma=0.99
        )
        acted = rollout[start + 2]
        assert torch.equal(out["stacked_pixels"][0], acted["stacked_pixels"])
        assert torch.equal(out["action"][0], acted["action"])
        bootstrap = rollout[start + 4]["next", "stacked_pixels"]
        assert torch.equal(out["next", "stacked_pixels"][0], bootstrap)
