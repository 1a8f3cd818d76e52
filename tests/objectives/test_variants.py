"""Full learner updates (world model, actor, critic) of every variant through TorchRL's stepper."""

from __future__ import annotations

import pytest
import torch
from torchrl.objectives import DreamerV3Loss, DreamerV3ModelLoss

from torchrl_psp.modules import synthetic_replay_sample
from torchrl_psp.objectives import (
    VARIANTS,
    PSPModelLoss,
    SDModelLoss,
    make_model_loss,
    make_optimization_stepper,
    make_variant_loss,
)

EXTRA_KEYS = {
    "psp": [("next", "segments"), "action", "is_init"],
    "psp_noseg": ["action", "is_init"],
    "sd_gt": [("next", "task_mask")],
    "sd_approx": [("next", "task_mask")],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_one_full_update_per_variant(tiny_agent, variant):
    loss = make_variant_loss(tiny_agent, variant, imagination_horizon=3)
    assert set(DreamerV3Loss.in_keys.fget(loss)) <= set(loss.in_keys)
    for key in EXTRA_KEYS.get(variant, []):
        assert key in loss.in_keys
    stepper = make_optimization_stepper(loss, warmup_steps=0)
    sample = synthetic_replay_sample(tiny_agent, 2, 4)
    # Keys nobody reads are dropped by the stepper, the ones the loss reads reach it.
    sample["unused"] = torch.zeros(2, 4)
    before = [parameter.detach().clone() for parameter in tiny_agent.encoder.parameters()]
    metrics = stepper.step(None, sample)
    assert all(torch.isfinite(value).all() for value in metrics.values())
    assert "loss_actor" in metrics and "loss_value" in metrics
    assert any(
        not torch.equal(parameter, previous)
        for parameter, previous in zip(tiny_agent.encoder.parameters(), before)
    )
    assert sample["replay_context"].batch_size == sample.batch_size
    if variant.startswith("psp") and variant != "psp_nosal":
        assert "weight_entropy" in metrics
    if variant in ("psp", "psp_noseg", "psp_nosal", "psp_value"):
        assert "loss_model_adv" in metrics


def test_model_loss_classes_per_variant(tiny_agent):
    classes = {variant: type(make_model_loss(tiny_agent, variant)) for variant in VARIANTS}
    assert classes["dreamer"] is DreamerV3ModelLoss
    assert all(classes[v] is PSPModelLoss for v in VARIANTS if v.startswith("psp"))
    assert all(classes[v] is SDModelLoss for v in VARIANTS if v.startswith("sd"))
    assert make_model_loss(tiny_agent, "sd_approx").mask_decoder is not None
    assert make_model_loss(tiny_agent, "sd_l2").mask_decoder is None
    assert make_model_loss(tiny_agent, "psp_value").saliency.head_output_key == "state_value"
    with pytest.raises(ValueError, match="Unknown variant"):
        make_model_loss(tiny_agent, "tia")


def test_adversarial_epsilon_sets_the_reversed_gradient_scale(tiny_agent):
    assert make_model_loss(tiny_agent, "psp").adversarial_head.epsilon == 1e3  # the paper's
    head = make_model_loss(tiny_agent, "psp_noseg", adversarial_epsilon=30.0).adversarial_head
    assert head.epsilon == 30.0
    encoded = torch.randn(3, head.in_features, requires_grad=True)
    head(encoded).sum().backward()
    reference = torch.autograd.grad(head.mlp(encoded).sum(), encoded)[0]
    torch.testing.assert_close(encoded.grad, -30.0 * reference)
    with pytest.raises(ValueError, match="variant=psp_noadv has no adversarial action head"):
        make_model_loss(tiny_agent, "psp_noadv", adversarial_epsilon=30.0)


def test_heads_owned_by_the_loss_are_optimised(tiny_agent):
    loss = make_variant_loss(tiny_agent, "psp")
    stepper = make_optimization_stepper(loss)
    optimised = {id(p) for group in stepper.optimizer.param_groups for p in group["params"]}
    head = loss.model_loss.adversarial_head
    assert all(id(p) in optimised for p in head.parameters())
    assert all(id(p) in optimised for p in tiny_agent.actor.parameters())


def test_actor_and_critic_learning_rates_are_separate_groups(tiny_agent):
    loss = make_variant_loss(tiny_agent, "psp")
    stepper = make_optimization_stepper(loss, lr=3e-4, actor_lr=1e-4, critic_lr=2e-4)
    groups = stepper.optimizer.param_groups
    assert [group["lr"] for group in groups] == [3e-4, 1e-4, 2e-4]
    ids = [{id(p) for p in group["params"]} for group in groups]
    assert ids[1] == {id(p) for p in tiny_agent.actor.parameters()}
    assert ids[2] == {id(p) for p in tiny_agent.value.parameters()}
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2])
    assert sum(map(len, ids)) == len({id(p) for p in loss.parameters()})
    # Without them, every group follows lr.
    default = make_optimization_stepper(loss, lr=5e-5).optimizer.param_groups
    assert {group["lr"] for group in default} == {5e-5}


def test_missing_segments_are_reported_through_the_stepper(tiny_agent):
    stepper = make_optimization_stepper(make_variant_loss(tiny_agent, "psp"), warmup_steps=0)
    sample = synthetic_replay_sample(tiny_agent, 2, 4).exclude(("next", "segments"))
    with pytest.raises(ValueError, match="segments"):
        stepper.step(None, sample)
