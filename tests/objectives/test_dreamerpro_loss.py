"""DreamerProModelLoss on the tiny agent: its terms, gradients, momentum embedder and keys."""

from __future__ import annotations

import pytest
import torch
from tensordict import from_module
from torchrl.data import Bounded
from torchrl.objectives import DreamerV3ModelLoss

from tests.conftest import make_tiny_agent
from torchrl_psp.modules import make_dreamer_v3, synthetic_replay_sample
from torchrl_psp.objectives import (
    DreamerProModelLoss,
    dreamerpro_components,
    make_model_loss,
    make_optimization_stepper,
    make_variant_loss,
    prototype_log_probs,
    sinkhorn_knopp,
)
from torchrl_psp.objectives.prototype_losses import temporal_prototype_loss

KL_SETTINGS = {"kl_mode": "separate", "lambda_dynamic": 0.5, "free_bits": 1.0, "unimix": 0.01}


def make_loss(agent, **kwargs) -> DreamerProModelLoss:
    world_model, modules = dreamerpro_components(agent, num_prototypes=12, prototype_dim=6)
    options = dict(
        KL_SETTINGS,
        lambda_continue=1.0,
        num_reward_bins=agent.config.num_reward_bins,
        freeze_prototypes_updates=0,
    )
    options.update(kwargs)
    return DreamerProModelLoss(world_model, **modules, **options)


def test_dreamer_terms_equal_torchrl_on_both_views(tiny_agent):
    """With no shift the two views are the sample twice: KL, reward and continuation terms
    are those of TorchRL's DreamerV3ModelLoss on the doubled sample (same random draws)."""
    sample = synthetic_replay_sample(tiny_agent, 2, 5, episode_length=3)
    loss = make_loss(tiny_agent, max_shift=0.0)
    reference = DreamerV3ModelLoss(
        tiny_agent.world_model,
        **KL_SETTINGS,
        lambda_continue=1.0,
        num_reward_bins=tiny_agent.config.num_reward_bins,
        reco_symlog=False,
    )
    torch.manual_seed(3)
    losses, _ = loss(sample)
    torch.manual_seed(3)
    torch.rand(4, 1, 2)  # the draw of the two views' shifts
    expected, _ = reference(torch.cat([sample, sample]))
    for name in ("dynamic", "representation", "reward", "continue"):
        key = f"loss_model_{name}"
        torch.testing.assert_close(losses[key], expected[key], msg=key)
    assert "loss_model_reco" not in losses.keys()


def test_prototype_terms_follow_the_functions(tiny_agent):
    """Identical views and a momentum copy equal to the online embedder: both views have the
    same Sinkhorn targets, and the temporal term is the latent's cross-entropy to them."""
    sample = synthetic_replay_sample(tiny_agent, 2, 4)
    loss = make_loss(tiny_agent, max_shift=0.0, lambda_temporal=2.0)
    loss.eval()  # no momentum update: the copy equals the online embedder
    captured = []  # the world model's output for both views
    loss.world_model.register_forward_hook(lambda module, args, out: captured.append(out))
    losses, output = loss(sample)
    next_ = captured[0].get("next")
    assert next_.batch_size == (4, 4) and output.batch_size == (2, 4)
    prototypes = loss.prototypes.weight.detach()
    image = torch.nn.functional.normalize(
        loss.observation_embedder[1](next_["encoded_latents"][:, 1:]), dim=-1
    )
    view = sinkhorn_knopp((image[:2].detach() @ prototypes.T).reshape(-1, 12), 0.0125, 3)
    torch.testing.assert_close(image[:2], image[2:])  # the two views are the same images
    targets = torch.cat([view, view])
    log_p = prototype_log_probs(image @ prototypes.T, 0.1).reshape(-1, 12)
    expected_swav = -(targets * log_p).sum(-1).mean()
    torch.testing.assert_close(losses["loss_model_swav"], expected_swav.reshape(1))
    latent = torch.cat([next_["state"], next_["belief"]], -1)[:, 1:]
    latent = torch.nn.functional.normalize(loss.latent_projection(latent), dim=-1)
    log_u = prototype_log_probs(latent @ prototypes.T, 0.1).reshape(-1, 12)
    expected_temporal = 2.0 * temporal_prototype_loss(log_u, targets)
    torch.testing.assert_close(losses["loss_model_temporal"], expected_temporal.reshape(1))
    assert 0 < losses["prototype_usage"] <= 1 and 0 <= losses["temporal_agreement"] <= 1


def test_gradients_reach_prototypes_encoder_and_projections(tiny_agent):
    loss = make_loss(tiny_agent)
    losses, _ = loss(synthetic_replay_sample(tiny_agent, 2, 4))
    (losses["loss_model_swav"] + losses["loss_model_temporal"]).sum().backward()
    for name, module in [
        ("prototypes", loss.prototypes),
        ("encoder", tiny_agent.encoder),
        ("observation projection", loss.observation_embedder[1]),
        ("latent projection", loss.latent_projection),
        ("RSSM posterior", tiny_agent.posterior),
    ]:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name
    assert all(p.grad is None for p in tiny_agent.decoder.parameters())  # no decoder pass
    assert not any(isinstance(t, torch.nn.Parameter) for t in loss.momentum_params.values(True))


def test_prototypes_frozen_then_released_and_normalised(tiny_agent):
    loss = make_loss(tiny_agent, freeze_prototypes_updates=1)
    with torch.no_grad():
        loss.prototypes.weight.mul_(5.0)
    sample = synthetic_replay_sample(tiny_agent, 2, 4)
    losses, _ = loss(sample)
    torch.testing.assert_close(loss.prototypes.weight.detach().norm(dim=-1), torch.ones(12))
    losses["loss_model_swav"].sum().backward()
    assert torch.equal(loss.prototypes.weight.grad, torch.zeros(12, 6))  # update 0: frozen
    loss.prototypes.weight.grad = None
    losses, _ = loss(sample)
    losses["loss_model_swav"].sum().backward()
    assert loss.prototypes.weight.grad.abs().sum() > 0  # update 1: released
    assert int(loss.updates) == 2


def test_momentum_embedder_moves_by_its_fraction(tiny_agent):
    loss = make_loss(tiny_agent, ema_fraction=0.05)
    online = from_module(loss.observation_embedder).data
    before = loss.momentum_params.data.clone()
    torch.testing.assert_close(before, online)  # starts as a copy
    with torch.no_grad():
        for parameter in loss.observation_embedder.parameters():
            parameter.add_(1.0)
    online = from_module(loss.observation_embedder).data.clone()
    loss(synthetic_replay_sample(tiny_agent, 2, 4))
    expected = before.apply(lambda old, new: 0.95 * old + 0.05 * new, online)
    torch.testing.assert_close(loss.momentum_params.data, expected)
    loss.eval()
    loss(synthetic_replay_sample(tiny_agent, 2, 4))  # evaluation: no update
    torch.testing.assert_close(loss.momentum_params.data, expected)
    assert int(loss.updates) == 1
    state = loss.state_dict()
    assert "updates" in state and any(key.startswith("momentum_params.") for key in state)


def test_returns_the_first_view_with_the_sample_batch(tiny_agent):
    sample = synthetic_replay_sample(tiny_agent, 3, 4)
    losses, output = make_loss(tiny_agent)(sample)
    assert output.batch_size == sample.batch_size
    assert output["next", "state"].requires_grad  # the replay-value term trains through it
    assert all(value.shape == (1,) for key, value in losses.items() if key.startswith("loss_"))


def test_configurable_keys(tiny_agent):
    agent = make_dreamer_v3(
        Bounded(-1, 1, (2,)),
        (3, 16, 16),
        preset="tiny",
        image_mults=(1, 2),
        pixels_key="rgb",
        device="cpu",
    )
    loss = make_model_loss(agent, "dreamerpro")
    assert loss.image_key == ("next", "rgb")
    sample = synthetic_replay_sample(agent, 2, 3)
    assert ("next", "rgb") in sample.keys(True)
    losses, _ = loss(sample)
    assert torch.isfinite(losses["loss_model_temporal"]).all()
    loss.set_keys(encoded="missing")
    with pytest.raises(ValueError, match="the encoder output under \\('next', 'missing'\\)"):
        loss(sample)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s.set(("next", "pixels"), s["next", "pixels"].permute(0, 1, 3, 4, 2)),
            "3, H, W",
        ),
        (lambda s: s.set(("next", "pixels"), s["next", "pixels"].float()), "float images in"),
        (lambda s: s[:, :1], "longer than warm_up=1"),
        (lambda s: s[0], "\\(batch, time\\)"),
        (lambda s: s.exclude(("next", "pixels")), "needs the entry"),
    ],
)
def test_bad_input_names_the_entry(tiny_agent, change, message):
    sample = synthetic_replay_sample(tiny_agent, 2, 3)
    with pytest.raises(ValueError, match=message):
        make_loss(tiny_agent)(change(sample))


def test_full_objective_update(tiny_agent):
    """make_variant_loss + the stepper: one update, finite, the prototypes' count advances,
    the decoder is neither run nor optimised."""
    loss = make_variant_loss(tiny_agent, "dreamerpro")
    stepper = make_optimization_stepper(loss)
    optimised = {id(p) for group in stepper.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in tiny_agent.decoder.parameters()}
    assert id(loss.model_loss.prototypes.weight) in optimised
    metrics = stepper.step(None, synthetic_replay_sample(tiny_agent, 2, 4))
    assert float(metrics["skipped_update"]) == 0.0
    assert int(loss.model_loss.updates) == 1
    assert loss.model_loss.freeze_prototypes_updates == 10_000  # the paper's setting


def test_variant_columns_and_evaluation_without_decoder(tiny_agent, tmp_path):
    """dreamerpro is a column of the tables and a world-model variant; its evaluation draws
    no figure and its world model's video shows what the agent sees only."""
    from torchrl_psp.objectives import VARIANTS
    from torchrl_psp.study.scores import VARIANT_ORDER
    from torchrl_psp.training.evaluation import episode_video, model_figures

    assert "dreamerpro" in VARIANT_ORDER and "dreamerpro" in VARIANTS
    loss = make_model_loss(tiny_agent, "dreamerpro")
    episode = synthetic_replay_sample(tiny_agent, 1, 6)[0]
    cpu = torch.device("cpu")
    assert model_figures(loss, episode, cpu, [], figures=()) == {}
    path = episode_video(loss.world_model, episode, cpu, tmp_path / "video.gif")
    assert path.stat().st_size > 0


@pytest.fixture
def decoder_free_agent():
    """The tiny agent of ``tiny_agent`` (same seed, same weights) built without decoder."""
    return make_tiny_agent(decoder=False)


def test_agent_without_decoder_trains_as_the_agent_with_one(tiny_agent, decoder_free_agent):
    """Built without decoder, the agent gives the loss the same world model (positions and
    weights): the same losses under the same draws, gradients that reach the encoder."""
    assert decoder_free_agent.decoder is None
    sample = synthetic_replay_sample(tiny_agent, 2, 4)
    results = []
    for agent in (tiny_agent, decoder_free_agent):
        torch.manual_seed(0)
        loss = make_loss(agent)
        torch.manual_seed(5)
        losses, output = loss(sample.clone())
        assert ("next", "reco_pixels") not in output.keys(True)
        results.append(losses)
    for key in results[0].keys():
        torch.testing.assert_close(results[1][key], results[0][key], msg=key)
    total = sum(v.sum() for k, v in results[1].items() if k.startswith("loss_"))
    total.backward()
    grads = [p.grad for p in decoder_free_agent.encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_checkpoint_of_an_agent_with_decoder_resumes_without(tiny_agent, decoder_free_agent):
    """The learner's checkpoint never held the decoder (it was filtered out of the loss):
    a state written with a decoder-built agent loads strictly into a decoder-free one."""
    old, new = (make_variant_loss(a, "dreamerpro") for a in (tiny_agent, decoder_free_agent))
    state = old.state_dict()
    decoder_tensors = {p.data_ptr() for p in tiny_agent.decoder.parameters()}
    assert not any(value.data_ptr() in decoder_tensors for value in state.values())
    assert sorted(state) == sorted(new.state_dict())
    new.load_state_dict(state)  # strict
    stepper = make_optimization_stepper(new)
    stepper.optimizer.load_state_dict(make_optimization_stepper(old).optimizer.state_dict())
    metrics = stepper.step(None, synthetic_replay_sample(decoder_free_agent, 2, 4))
    assert float(metrics["skipped_update"]) == 0.0


def test_reconstructing_variants_need_a_decoder(decoder_free_agent):
    with pytest.raises(ValueError, match="variant=psp reconstructs images: it needs an agent"):
        make_model_loss(decoder_free_agent, "psp")
    from torchrl_psp.training.evaluation import model_figures

    loss = make_model_loss(decoder_free_agent, "dreamerpro")
    episode = synthetic_replay_sample(decoder_free_agent, 1, 6)[0]
    with pytest.raises(ValueError, match="this world model has no decoder"):
        model_figures(loss, episode, torch.device("cpu"), list(episode.keys(True, True)))
