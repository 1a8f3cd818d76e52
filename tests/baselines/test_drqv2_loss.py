"""DrQv2Loss values on a tiny batch, by hand; gradient routing; the stepper's soft update and skips."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded

from torchrl_psp.baselines import DrQv2Loss, DrQv2WindowLoss, make_drqv2, make_drqv2_stepper

SPEC = Bounded(-1, 1, (1,))


class MeanEncoder(nn.Module):
    """f = s * mean(pixels), s = 1."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, pixels):
        return self.scale * pixels.float().mean((-3, -2, -1)).unsqueeze(-1)


class TanhActor(nn.Module):
    """mu = tanh(w f), w = 0.5."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))

    def forward(self, f):
        return torch.tanh(self.w * f)


class LinearCritics(nn.Module):
    """Q1 = f + 2 a, Q2 = 0.5 f - a."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1.0, 0.5]))
        self.b = nn.Parameter(torch.tensor([2.0, -1.0]))

    def forward(self, f, action):
        return self.a * f + self.b * action


def tiny_loss(std=0.0, **kwargs):
    loss = DrQv2Loss(
        TensorDictModule(MeanEncoder(), ["stacked_pixels"], ["features"]),
        TensorDictModule(TanhActor(), ["features"], ["action"]),
        TensorDictModule(LinearCritics(), ["features", "action"], ["state_action_value"]),
        std,
        action_spec=SPEC,
        gamma=0.9,
        augmentation=None,
        **kwargs,
    )
    return loss


def tiny_batch():
    images = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1).expand(2, 3, 4, 4)
    return TensorDict(
        {
            "stacked_pixels": images.clone(),
            ("next", "stacked_pixels"): images + 2.0,  # f' = 3, 4
            "action": torch.tensor([[0.5], [-0.5]]),
            ("next", "reward"): torch.tensor([[1.0], [0.0]]),
            ("next", "done"): torch.tensor([[False], [True]]),
            ("next", "terminated"): torch.tensor([[False], [True]]),
            "steps_to_next_obs": torch.tensor([[3], [3]]),
        },
        [2],
    )


def q(f, a):
    return f + 2 * a, 0.5 * f - a


def test_loss_values_by_hand():
    out = tiny_loss()(tiny_batch())
    # critic target: y = r + 0.9^3 (1 - d) min Q'(f', tanh(0.5 f')), target critic = critic
    y = []
    for f_next, r, d in ((3.0, 1.0, 0), (4.0, 0.0, 1)):
        y.append(r + 0.9**3 * (1 - d) * min(q(f_next, math.tanh(0.5 * f_next))))
    critic = 0.0
    for i, (f, a) in enumerate(((1.0, 0.5), (2.0, -0.5))):
        q1, q2 = q(f, a)
        critic += ((q1 - y[i]) ** 2 + (q2 - y[i]) ** 2) / 2  # mean over 2 samples, Q1 + Q2
    actor = -sum(min(q(f, math.tanh(0.5 * f))) for f in (1.0, 2.0)) / 2
    assert out["loss_critic"].item() == pytest.approx(critic, rel=1e-5)
    assert out["loss_actor"].item() == pytest.approx(actor, rel=1e-5)
    assert out["critic_target_q"].item() == pytest.approx(sum(y) / 2, rel=1e-5)


def test_gradients_reach_only_their_own_networks():
    loss = tiny_loss()
    out = loss(tiny_batch())
    out["loss_actor"].backward(retain_graph=True)
    assert loss.actor.module.w.grad is not None
    assert loss.encoder.module.scale.grad is None  # the actor reads detached features
    assert all(p.grad is None for p in loss.critic_params.values(True, True))
    loss.actor.module.w.grad = None
    out["loss_critic"].backward()
    assert loss.actor.module.w.grad is None  # the target action is under no_grad
    assert loss.encoder.module.scale.grad is not None  # the critic trains the encoder


def test_noise_is_clipped_and_actions_stay_in_bounds():
    torch.manual_seed(0)
    loss = tiny_loss(std=10.0, std_clip=0.3)
    mean = torch.zeros(1000, 1)
    noisy = loss._noisy(mean)
    assert noisy.abs().max().item() == pytest.approx(0.3)
    assert loss._noisy(torch.full((100, 1), 0.9)).max() < 1.0


def test_set_keys_renames_what_the_loss_reads():
    loss = tiny_loss()
    loss.set_keys(pixels="obs", steps_to_next_obs="n")
    assert "obs" in loss.in_keys and ("next", "obs") in loss.in_keys and "n" in loss.in_keys
    batch = tiny_batch()
    batch.rename_key_("stacked_pixels", "obs").rename_key_(
        ("next", "stacked_pixels"), ("next", "obs")
    )
    batch.rename_key_("steps_to_next_obs", "n")
    loss.encoder.in_keys = ["obs"]  # the encoder reads the renamed entry too
    assert torch.isfinite(loss(batch)["loss_critic"])
    with pytest.raises(ValueError, match="reads 'obs'"):
        loss(tiny_batch())


def test_stepper_soft_update_and_non_finite_skip():
    torch.manual_seed(0)
    agent = make_drqv2(SPEC, (3, 16, 16), hidden_dim=8, feature_dim=4)
    loss = DrQv2Loss(agent.encoder, agent.actor, agent.critic, 0.2, action_spec=SPEC)
    objective = DrQv2WindowLoss(loss, n_step=2, frame_stack=1)
    stepper = make_drqv2_stepper(objective, lr=1e-3, tau=0.01)
    frames = torch.randint(0, 256, (4, 2, 3, 16, 16), dtype=torch.uint8)
    window = TensorDict(
        {
            "pixels": frames,
            ("next", "pixels"): frames.flip(1),
            "action": torch.rand(4, 2, 1) * 2 - 1,
            ("next", "reward"): torch.rand(4, 2, 1),
            ("next", "done"): torch.zeros(4, 2, 1, dtype=torch.bool),
            ("next", "terminated"): torch.zeros(4, 2, 1, dtype=torch.bool),
        },
        [4, 2],
    )
    target = loss.target_critic_params.clone()
    stepper.step(None, window)
    new = loss.critic_params
    for key, value in target.items(True, True):  # target <- 0.99 target + 0.01 critic
        torch.testing.assert_close(
            loss.target_critic_params.get(key), 0.99 * value + 0.01 * new.get(key).detach()
        )
    window["next", "reward"][0, 0] = float("nan")
    before = [p.detach().clone() for p in objective.parameters()]
    metrics = stepper.step(None, window)
    assert float(metrics["skipped_update"]) == 1.0 and stepper.last_non_finite == ["loss_critic"]
    assert all(torch.equal(p, b) for p, b in zip(objective.parameters(), before))
