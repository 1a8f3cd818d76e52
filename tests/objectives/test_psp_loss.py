"""PSPModelLoss: weighted reconstruction, saliency weights, adversarial head, keys and errors."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded

from torchrl_psp.modules import AdversarialActionHead, make_dreamer_v3, synthetic_replay_sample
from torchrl_psp.objectives import PSPModelLoss, make_model_loss, segment_weights


def _total(losses: TensorDict) -> torch.Tensor:
    return sum(value.sum() for key, value in losses.items() if key.startswith("loss_"))


def _seeded(loss, sample, seed=0):
    """Runs the loss with a fixed seed (the RSSM draws its posterior samples)."""
    torch.manual_seed(seed)
    return loss(sample)


def test_given_weights_reconstruction_by_hand(tiny_agent):
    loss = make_model_loss(tiny_agent, "psp", saliency=None, adversarial_head=None)
    sample = synthetic_replay_sample(tiny_agent, 2, 3)
    weights = torch.rand(2, 3, 16, 16) * 2
    sample["next", "loss_weights"] = weights
    losses, output = loss(sample)
    pixels = sample["next", "pixels"].float() / 255
    error = (pixels - output["next", "reco_pixels"]) ** 2 * weights.unsqueeze(-3)
    torch.testing.assert_close(losses["loss_model_reco"].squeeze(), error.sum((-3, -2, -1)).mean())
    unweighted = ((pixels - output["next", "reco_pixels"]) ** 2).sum((-3, -2, -1)).mean()
    torch.testing.assert_close(losses["model_reco_unweighted"].squeeze(), unweighted)
    assert torch.equal(output["next", "loss_weights"], weights)


def _reference_salience(agent, sample, output):
    """Per-image autograd loop with the world model's own beliefs and posterior samples."""
    posterior = agent.posterior
    pixels = sample["next", "pixels"]
    belief = output["next", "belief"].detach()
    state = output["next", "state"].detach()
    salience = torch.zeros(pixels.shape[:2] + pixels.shape[-2:])
    for b in range(pixels.shape[0]):
        for t in range(pixels.shape[1]):
            image = (pixels[b, t].float() / 255).requires_grad_(True)
            logits = posterior._logits(belief[b, t], agent.encoder(image))
            mix = posterior.unimix
            probs = (1 - mix) * logits.softmax(-1) + mix / logits.shape[-1]
            latent = probs + (state[b, t].reshape(probs.shape) - probs).detach()
            inputs = TensorDict({"state": latent.flatten(), "belief": belief[b, t]}, [])
            action_mean = agent.actor.get_dist_params(inputs)["loc"]
            (grad,) = torch.autograd.grad(action_mean.sum(), image)
            salience[b, t] = grad.abs().sum(0)
    return salience


@pytest.mark.parametrize("use_segments", [True, False])
@pytest.mark.parametrize("share", [True, False])
def test_saliency_weights_equal_the_per_image_reference(tiny_agent, use_segments, share):
    loss = make_model_loss(tiny_agent, "psp", use_segments=use_segments, share_encoder_pass=share)
    sample = synthetic_replay_sample(tiny_agent, 2, 3, num_segments=4)
    losses, output = loss(sample)
    salience = _reference_salience(tiny_agent, sample, output)
    assert salience.abs().sum() > 0
    expected = segment_weights(salience, sample["next", "segments"] if use_segments else None)
    torch.testing.assert_close(output["next", "loss_weights"], expected, rtol=1e-5, atol=1e-5)
    assert not output["next", "loss_weights"].requires_grad
    for key in ("weight_min", "weight_max", "weight_entropy"):
        assert torch.isfinite(losses[key])


def test_saliency_does_not_change_parameter_gradients(tiny_agent):
    """Same weights given as data or computed by saliency: identical parameter gradients."""
    agent = tiny_agent
    sample = synthetic_replay_sample(agent, 2, 3)
    pixels_before = sample["next", "pixels"].clone()
    with_saliency = make_model_loss(agent, "psp_noadv")
    losses, output = _seeded(with_saliency, sample)
    parameters = list(agent.world_model.parameters())
    grads = torch.autograd.grad(_total(losses), parameters, allow_unused=True)

    given = make_model_loss(agent, "psp_noadv", saliency=None)
    sample_with_weights = sample.clone()
    sample_with_weights["next", "loss_weights"] = output["next", "loss_weights"]
    losses_given, _ = _seeded(given, sample_with_weights)
    grads_given = torch.autograd.grad(_total(losses_given), parameters, allow_unused=True)
    for grad, grad_given in zip(grads, grads_given):
        if grad is None:
            assert grad_given is None
        else:
            torch.testing.assert_close(grad, grad_given, rtol=1e-6, atol=1e-7)
    assert all(p.grad is None for p in with_saliency.parameters())
    assert torch.equal(sample["next", "pixels"], pixels_before)
    assert not sample["next", "pixels"].requires_grad


def test_adversarial_loss_by_hand_skips_is_init_steps(tiny_agent):
    agent = tiny_agent
    loss = make_model_loss(agent, "psp_nosal")
    sample = synthetic_replay_sample(agent, 2, 4, episode_length=2)  # is_init at t = 0, 2
    losses, output = loss(sample)
    prediction = loss.adversarial_head(output["next", "encoded_latents"])
    valid = ~sample["is_init"].squeeze(-1)
    squared = ((prediction - sample["action"]) ** 2).sum(-1)
    expected = squared[valid].mean()
    torch.testing.assert_close(losses["loss_model_adv"].squeeze(), expected)
    torch.testing.assert_close(
        losses["adv_action_mse"], expected / agent.action_dim, rtol=1e-6, atol=1e-7
    )
    # Only is_init steps: no previous action anywhere, the loss is 0 (not NaN).
    sample["is_init"] = torch.ones_like(sample["is_init"])
    losses, _ = loss(sample)
    assert losses["loss_model_adv"].item() == 0.0


def test_encoder_gets_wm_grad_minus_eps_adv_grad(tiny_agent):
    """One backward of the PSP loss equals two separate backward passes.

    (TorchRL's RMS norms run in float32, so the comparison holds to float32 rounding of
    the largest term; tests/modules/test_gradient_reversal.py checks it to 1e-12.)
    """
    agent = tiny_agent
    torch.manual_seed(3)
    head = AdversarialActionHead(agent.encoded_dim, agent.action_dim, depth=1, num_cells=16)
    sample = synthetic_replay_sample(agent, 2, 3)
    with_head = make_model_loss(agent, "psp", adversarial_head=head)
    without_head = make_model_loss(agent, "psp", adversarial_head=None)
    encoder_params = list(agent.encoder.parameters())
    head_params = list(head.parameters())

    losses, _ = _seeded(with_head, sample)
    grads = torch.autograd.grad(_total(losses), encoder_params + head_params)
    wm_losses, wm_output = _seeded(without_head, sample)
    wm_grads = torch.autograd.grad(_total(wm_losses), encoder_params, retain_graph=True)
    valid = ~sample["is_init"].squeeze(-1)
    prediction = head.mlp(wm_output["next", "encoded_latents"])
    adv = ((prediction - sample["action"]) ** 2).sum(-1)[valid].mean()
    adv_grads = torch.autograd.grad(adv, encoder_params + head_params)
    eps = head.epsilon
    count = len(encoder_params)
    for grad, wm_grad, adv_grad in zip(grads[:count], wm_grads, adv_grads[:count]):
        expected = wm_grad - eps * adv_grad
        scale = float(expected.abs().max())
        torch.testing.assert_close(grad, expected, rtol=0, atol=1e-5 * scale)
    for grad, adv_grad in zip(grads[count:], adv_grads[count:]):
        torch.testing.assert_close(grad, adv_grad, rtol=1e-6, atol=1e-8)


def test_all_zero_saliency_is_nan_free_and_uniform(tiny_agent):
    agent = tiny_agent
    with torch.no_grad():
        net = agent.actor[0].module
        net.mean_head.weight.zero_()  # the action mean no longer depends on the image
    loss = make_model_loss(agent, "psp")
    losses, output = loss(synthetic_replay_sample(agent, 2, 3))
    assert torch.equal(output["next", "loss_weights"], torch.ones(2, 3, 16, 16))
    torch.testing.assert_close(losses["loss_model_reco"], losses["model_reco_unweighted"])
    assert all(torch.isfinite(value).all() for value in losses.values())
    _total(losses).backward()


@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (3, 2)])
@pytest.mark.parametrize("variant", ["psp", "psp_noseg", "psp_noadv", "psp_nosal", "psp_value"])
def test_psp_losses_are_finite_for_several_batch_shapes(tiny_agent, shape, variant):
    loss = make_model_loss(tiny_agent, variant)
    losses, _ = loss(synthetic_replay_sample(tiny_agent, *shape))
    assert all(torch.isfinite(value).all() for value in losses.values())
    _total(losses).backward()
    grads = [p.grad for p in tiny_agent.world_model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)


def test_unit_float_images_give_the_uint8_losses(tiny_agent):
    loss = make_model_loss(tiny_agent, "psp")
    sample = synthetic_replay_sample(tiny_agent, 2, 3)
    as_float = sample.clone()
    as_float["next", "pixels"] = sample["next", "pixels"].float() / 255
    losses, _ = _seeded(loss, sample)
    losses_float, _ = _seeded(loss, as_float)
    for key in ("loss_model_reco", "loss_model_adv", "weight_max"):
        torch.testing.assert_close(losses_float[key], losses[key])


def test_keys_are_configurable():
    agent = make_dreamer_v3(
        Bounded(-1, 1, (2,)),
        (3, 16, 16),
        preset="tiny",
        image_mults=(1, 2),
        pixels_key="rgb",
        device="cpu",
    )
    loss = make_model_loss(agent, "psp")
    loss.set_keys(segments="sam_segments", loss_weights="psp_weights", action="prev_action")
    sample = synthetic_replay_sample(agent, 2, 3)
    sample.rename_key_(("next", "segments"), ("next", "sam_segments"))
    sample["prev_action"] = sample["action"]
    assert ("next", "sam_segments") in loss.extra_in_keys and "prev_action" in loss.extra_in_keys
    _, output = loss(sample)
    assert ("next", "psp_weights") in output.keys(True)
    with pytest.raises(ValueError, match="not an accepted"):
        loss.set_keys(not_a_key="x")


def test_bad_inputs_are_reported(tiny_agent):
    loss = make_model_loss(tiny_agent, "psp")
    sample = synthetic_replay_sample(tiny_agent, 2, 3)
    channels_last = sample.clone()
    channels_last["next", "pixels"] = sample["next", "pixels"].permute(0, 1, 3, 4, 2)
    with pytest.raises(ValueError, match=r"'pixels'.*channels first"):
        loss(channels_last)
    with pytest.raises(ValueError, match="segments"):
        loss(sample.exclude(("next", "segments")))
    wrong = sample.clone()
    wrong["next", "segments"] = torch.zeros(2, 3, 8, 8, dtype=torch.int16)
    with pytest.raises(ValueError, match=r"\(\*batch, H, W\)"):
        loss(wrong)
    loss.set_keys(action="previous_action_missing")
    with pytest.raises(ValueError, match="previous_action_missing"):
        loss(sample)
    with pytest.raises(ValueError, match="detach_output"):
        PSPModelLoss(tiny_agent.world_model, detach_output=True)
