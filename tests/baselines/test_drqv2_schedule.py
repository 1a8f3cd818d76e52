"""The exploration std schedule and DrQ-v2's exploration module."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_psp.baselines import DrQv2Exploration, linear_std, std_schedule_steps


def test_linear_schedule_by_hand():
    """linear(1.0, 0.1, 500000) of the paper's medium tasks."""
    values = [linear_std(s, 1.0, 0.1, 500_000) for s in (0, 125_000, 250_000, 500_000, 10**7)]
    assert values == pytest.approx([1.0, 0.775, 0.55, 0.1, 0.1])
    assert linear_std(-5, 1.0, 0.1, 10) == 1.0


@pytest.mark.parametrize(
    "task, steps",
    [("cartpole-swingup", 100_000), ("cheetah-run", 500_000), ("humanoid-run", 2_000_000)],
)
def test_the_schedule_length_follows_the_papers_task_groups(task, steps):
    domain, name = task.split("-")
    cfg = NS(env=NS(domain=domain, task=name), drqv2=NS(std_schedule_steps="auto"))
    assert std_schedule_steps(cfg) == steps
    cfg.drqv2.std_schedule_steps = 1234
    assert std_schedule_steps(cfg) == 1234


def test_exploration_uniform_then_scheduled_noise_and_the_mean_in_evaluation():
    torch.manual_seed(0)
    explore = DrQv2Exploration(Bounded(-1, 1, (2,)), 1.0, 0.1, duration=100, uniform_steps=10)
    zeros = TensorDict(action=torch.zeros(20000, 2), batch_size=[20000])
    explore.set_step(5)  # uniform phase: U(-1, 1), mean 0, variance 1/3
    with set_exploration_type(ExplorationType.RANDOM):
        uniform = explore(zeros.clone())["action"]
    assert uniform.abs().max() <= 1 and uniform.var().item() == pytest.approx(1 / 3, rel=0.05)
    explore.set_step(90)  # Gaussian phase: std 1 - 0.9 * 0.9 = 0.19
    assert float(explore.sigma) == pytest.approx(0.19) and not bool(explore.uniform)
    with set_exploration_type(ExplorationType.RANDOM):
        noisy = explore(zeros.clone())["action"]
    assert noisy.std().item() == pytest.approx(0.19, rel=0.05)
    near_bound = TensorDict(action=torch.full((1000, 2), 0.99), batch_size=[1000])
    with set_exploration_type(ExplorationType.RANDOM):
        assert explore(near_bound)["action"].max() <= 1.0  # projected into the bounds
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        torch.testing.assert_close(explore(zeros.clone())["action"], zeros["action"])
    state = explore.state_dict()  # the schedule travels with checkpoints and weights
    assert float(state["sigma"]) == pytest.approx(0.19) and not bool(state["uniform"])
