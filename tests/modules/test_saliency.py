"""PolicySaliency: analytic gradient, per-image reference loop, shared encoder pass, no .grad."""

from __future__ import annotations

import warnings

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from torchrl_psp.modules import PolicySaliency, image_to_unit_float


class _LinearEncoder(nn.Module):
    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.matrix = nn.Parameter(matrix)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.flatten(-3) @ self.matrix.T


class _IdentityPosterior(nn.Module):
    """One categorical whose logits are the encoding itself (no belief input)."""

    unimix = 0.0

    def forward(self, belief: torch.Tensor, encoded: torch.Tensor):
        logits = encoded.unsqueeze(-2)
        return logits, None


def test_linear_model_gradient_equals_the_analytic_one():
    """e = A x, p = softmax(e), a = sum_j (C^T z)_j with z = ST(p): G = A^T (p * (c - p.c))."""
    torch.manual_seed(0)
    classes, actions = 5, 3
    image = torch.rand(2, 4, 1, 2, 3, dtype=torch.float64)
    matrix = torch.randn(classes, 6, dtype=torch.float64)
    action_matrix = torch.randn(classes, actions, dtype=torch.float64)
    actor = TensorDictModule(
        lambda state, belief: state @ action_matrix, in_keys=["state", "belief"], out_keys=["loc"]
    )
    saliency = PolicySaliency(_LinearEncoder(matrix), _IdentityPosterior(), actor)
    belief = torch.zeros(2, 4, 1, dtype=torch.float64)
    gradient = saliency.gradient(image, belief)

    probs = torch.softmax(image.flatten(-3) @ matrix.T, -1)
    c = action_matrix.sum(-1)
    d_encoding = probs * (c - (probs * c).sum(-1, keepdim=True))
    expected = (d_encoding @ matrix).reshape(image.shape)
    torch.testing.assert_close(gradient, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(saliency(image, belief), expected.abs().sum(-3))


def _reference_gradients(agent, pixels, belief, state, head, key):
    """Slow reference: one autograd call per image, belief constant."""
    posterior = agent.posterior
    reference = torch.zeros(pixels.shape)
    for b in range(pixels.shape[0]):
        for t in range(pixels.shape[1]):
            image = image_to_unit_float(pixels[b, t]).clone().requires_grad_(True)
            logits = posterior._logits(belief[b, t], agent.encoder(image))
            mix = posterior.unimix
            probs = (1 - mix) * logits.softmax(-1) + mix / logits.shape[-1]
            sample = state[b, t].reshape(probs.shape)
            latent = (probs + (sample - probs).detach()).flatten()
            inputs = TensorDict({"state": latent, "belief": belief[b, t]}, [])
            params = getattr(head, "get_dist_params", None)
            output = params(inputs) if params is not None else head(inputs)
            (reference[b, t],) = torch.autograd.grad(output[key].sum(), image)
    return reference


def _posterior_samples(agent, shape):
    cfg = agent.config
    index = torch.randint(0, cfg.num_classes, (*shape, cfg.num_categoricals))
    return nn.functional.one_hot(index, cfg.num_classes).float().flatten(-2)


@pytest.mark.parametrize("target", ["policy", "value"])
def test_batched_saliency_equals_per_image_loop(tiny_agent, target):
    torch.manual_seed(1)
    agent = tiny_agent
    if target == "value":
        with torch.no_grad():
            for parameter in agent.value.parameters():
                parameter.normal_(0.0, 0.1)
        head, key = agent.value, "state_value"
    else:
        head, key = agent.actor, "loc"
    saliency = PolicySaliency(agent.encoder, agent.posterior, head, head_output_key=key)
    pixels = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    belief = torch.randn(2, 3, agent.config.rnn_hidden_dim)
    state = _posterior_samples(agent, (2, 3))
    reference = _reference_gradients(agent, pixels, belief, state, head, key)
    scale = reference.abs().max()
    assert scale > 0
    # 1e-6 of the gradients' scale (the two-hot critic's gradients are large).
    tolerance = 1e-6 * max(1.0, float(scale))

    separate = saliency.gradient(pixels, belief, state=state)
    torch.testing.assert_close(separate, reference, rtol=0, atol=tolerance)

    with saliency.capture_encoder_pass() as capture:
        encoded = agent.encoder(pixels)
    shared = saliency.gradient_from_capture(capture, encoded, pixels.shape, belief, state=state)
    torch.testing.assert_close(shared, reference, rtol=0, atol=tolerance)
    # The encoding keeps its graph for the world model's backward pass.
    assert encoded.grad_fn is not None


def test_belief_is_treated_as_a_constant(tiny_agent):
    """Beliefs that depend on earlier images must not leak their gradient (SPEC §2)."""
    agent = tiny_agent
    saliency = PolicySaliency(agent.encoder, agent.posterior, agent.actor)
    pixels = torch.rand(1, 2, 3, 16, 16)
    previous = pixels[:, :1].clone().requires_grad_(True)
    belief = torch.randn(1, 2, agent.config.rnn_hidden_dim) + previous.mean()
    with_graph = saliency.gradient(pixels, belief)
    constant = saliency.gradient(pixels, belief.detach())
    torch.testing.assert_close(with_graph, constant, rtol=0, atol=0)
    assert previous.grad is None


def test_parameter_grads_are_untouched(tiny_agent):
    agent = tiny_agent
    saliency = PolicySaliency(agent.encoder, agent.posterior, agent.actor)
    parameters = list(saliency.parameters())
    for parameter in parameters:
        parameter.grad = torch.full_like(parameter, 0.25)
    pixels = torch.randint(0, 256, (2, 2, 3, 16, 16), dtype=torch.uint8)
    belief = torch.randn(2, 2, agent.config.rnn_hidden_dim)
    saliency(pixels, belief)
    with saliency.capture_encoder_pass() as capture:
        encoded = agent.encoder(pixels)
    saliency.gradient_from_capture(capture, encoded, pixels.shape, belief)
    for parameter in parameters:
        assert torch.equal(parameter.grad, torch.full_like(parameter, 0.25))


def test_uint8_and_unit_float_images_give_the_same_saliency(tiny_agent):
    agent = tiny_agent
    saliency = PolicySaliency(agent.encoder, agent.posterior, agent.actor)
    pixels = torch.randint(0, 256, (1, 2, 3, 16, 16), dtype=torch.uint8)
    belief = torch.randn(1, 2, agent.config.rnn_hidden_dim)
    torch.testing.assert_close(saliency(pixels, belief), saliency(pixels.float() / 255, belief))


def test_capture_needs_a_dreamer_encoder_and_a_recorded_pass(tiny_agent):
    agent = tiny_agent
    other = PolicySaliency(nn.Flatten(-3), agent.posterior, agent.actor)
    assert not other.can_capture
    with pytest.raises(ValueError, match="DreamerV3ImageEncoder"):
        with other.capture_encoder_pass():
            pass
    saliency = PolicySaliency(agent.encoder, agent.posterior, agent.actor)
    belief = torch.randn(1, 1, agent.config.rnn_hidden_dim)
    pixels = torch.rand(1, 1, 3, 16, 16)
    with saliency.capture_encoder_pass() as capture, torch.no_grad():
        encoded = agent.encoder(pixels)
    with pytest.raises(ValueError, match="no differentiable encoder pass"):
        saliency.gradient_from_capture(capture, encoded, pixels.shape, belief)


def test_bad_shapes_are_reported(tiny_agent):
    agent = tiny_agent
    saliency = PolicySaliency(agent.encoder, agent.posterior, agent.actor)
    with pytest.raises(ValueError, match="belief must have shape"):
        saliency(torch.rand(2, 3, 3, 16, 16), torch.randn(2, agent.config.rnn_hidden_dim))
    with pytest.raises(ValueError, match=r"\(\*batch, C, H, W\)"):
        saliency(torch.rand(16, 16), torch.randn(agent.config.rnn_hidden_dim))


class _WrappedEncoder(nn.Module):
    """The same encoder behind another class: its pass cannot be recorded."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.inner = encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.inner(image)


def _world_model_pass(agent, pixels, belief, state, encode=True, grad=True):
    """A stand-in for the world-model loss: encodes the images and returns its latents."""

    def world_model():
        with torch.set_grad_enabled(grad):
            encoded = agent.encoder(image_to_unit_float(pixels)) if encode else None
        return {"encoded": encoded, "belief": belief, "state": state}

    def latents(result):
        return result["encoded"], result["belief"], result["state"]

    return world_model, latents


def test_run_with_salience_shares_the_encoder_pass_without_a_warning(tiny_agent, recwarn):
    agent = tiny_agent
    saliency = PolicySaliency(agent.encoder, agent.posterior, agent.actor)
    pixels = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    belief = torch.randn(2, 3, agent.config.rnn_hidden_dim)
    state = _posterior_samples(agent, (2, 3))
    expected = saliency(pixels, belief, state=state)
    calls = []
    original = saliency.gradient
    saliency.gradient = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    for share in (True, False):
        result, salience = saliency.run_with_salience(
            pixels, *_world_model_pass(agent, pixels, belief, state), share_encoder_pass=share
        )
        torch.testing.assert_close(salience, expected, rtol=0, atol=1e-6)
        assert result["encoded"].grad_fn is not None  # kept for the world model
    assert len(calls) == 1  # the separate encoder pass ran only with share_encoder_pass=False
    assert not [w for w in recwarn if "separate encoder pass" in str(w.message)]


@pytest.mark.parametrize(
    "case, reason",
    [
        ("other encoder", "is not a DreamerV3ImageEncoder"),
        ("no grad", "gradients are disabled"),
        ("encoder not run", "did not run the encoder"),
        ("encoder without grad", "did not run the encoder"),
    ],
)
def test_run_with_salience_falls_back_with_one_warning_naming_the_reason(tiny_agent, case, reason):
    agent = tiny_agent
    encoder = agent.encoder
    if case == "other encoder":
        encoder = _WrappedEncoder(agent.encoder)
    saliency = PolicySaliency(encoder, agent.posterior, agent.actor)
    pixels = torch.randint(0, 256, (1, 2, 3, 16, 16), dtype=torch.uint8)
    belief = torch.randn(1, 2, agent.config.rnn_hidden_dim)
    state = _posterior_samples(agent, (1, 2))
    expected = saliency(pixels, belief, state=state)
    world_model, latents = _world_model_pass(
        agent,
        pixels,
        belief,
        state,
        encode=case != "encoder not run",
        grad=case != "encoder without grad",
    )
    grad_mode = torch.no_grad() if case == "no grad" else torch.enable_grad()
    with pytest.warns(UserWarning, match=f"separate encoder pass: .*{reason}"), grad_mode:
        _, salience = saliency.run_with_salience(pixels, world_model, latents)
    torch.testing.assert_close(salience, expected, rtol=0, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per instance
        with grad_mode:
            saliency.run_with_salience(pixels, world_model, latents)
