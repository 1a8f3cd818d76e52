"""The optimised learner computes what the eager one does: channels-last codec, compiled regions."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from torchrl.data import Bounded
from torchrl.modules import DreamerV3ImageDecoder, DreamerV3ImageEncoder

from torchrl_psp.modules import (
    REGIONS,
    ChannelsLastImageDecoder,
    ChannelsLastImageEncoder,
    CompiledRegion,
    compile_agent,
    make_dreamer_v3,
    synthetic_replay_sample,
)
from torchrl_psp.modules.image_codec import _check_layers
from torchrl_psp.objectives import VARIANTS, make_variant_loss
from torchrl_psp.variants import VARIANT_SPECS


def _tiny_agent():
    torch.manual_seed(0)
    return make_dreamer_v3(
        Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny", image_mults=(1, 2), device="cpu"
    )


def test_channels_last_encoder_is_torchrl_encoder():
    torch.manual_seed(0)
    ours = ChannelsLastImageEncoder(depth=4, mults=(1, 2, 2))
    reference = DreamerV3ImageEncoder(depth=4, mults=(1, 2, 2))
    reference.load_state_dict(ours.state_dict())
    images = torch.rand(2, 3, 3, 32, 32)
    out, expected = ours(images), reference(images)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_channels_last_decoder_is_torchrl_decoder():
    torch.manual_seed(0)
    kwargs = dict(image_shape=(3, 16, 16), depth=4, mults=(1, 2), num_blocks=2)
    ours, reference = ChannelsLastImageDecoder(12, **kwargs), DreamerV3ImageDecoder(12, **kwargs)
    reference.load_state_dict(ours.state_dict())
    z = torch.randn(5, 8, requires_grad=True)
    h = torch.randn(5, 4)
    out, expected = ours(z, h), reference(z, h)
    assert out.shape == expected.shape == (5, 3, 16, 16)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(out.square().sum(), z)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), z)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5)


def test_codec_refuses_unknown_layers():
    encoder = DreamerV3ImageEncoder(depth=2, mults=(1,))
    encoder.layers.append(torch.nn.Identity())
    with pytest.raises(TypeError, match="expects the layers"):
        _check_layers(encoder, torch.nn.Conv2d, last=False)


def test_region_falls_back_to_eager_with_one_warning(monkeypatch):
    region = CompiledRegion("double", lambda x: 2 * x)

    def broken(*args, **kwargs):
        raise torch._dynamo.exc.Unsupported("no graph for you")

    monkeypatch.setattr(region, "compiled", broken)
    with torch.enable_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = region(torch.ones(2)), region(torch.ones(2))
    assert torch.equal(first, torch.full((2,), 2.0)) and torch.equal(second, first)
    assert len(caught) == 1 and "double; it runs eagerly: Unsupported" in str(caught[0].message)
    assert region.failure.startswith("Unsupported: no graph for you")


def test_region_names_an_empty_cached_library(monkeypatch, tmp_path):
    library = tmp_path / "ckernel.main.so"
    library.write_bytes(b"")  # what a compilation killed while building leaves
    region = CompiledRegion("double", lambda x: 2 * x)

    def cannot_load(*args, **kwargs):
        raise torch._inductor.exc.InductorError(ImportError(f"{library}: file too short"), None)

    monkeypatch.setattr(region, "compiled", cannot_load)
    with torch.enable_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert torch.equal(region(torch.ones(2)), torch.full((2,), 2.0))
    message = str(caught[0].message)
    assert f"{library} is empty" in message and "TORCHINDUCTOR_CACHE_DIR" in message
    library.write_bytes(b"\x7fELF")  # a library that is not empty gets no hint
    other = CompiledRegion("double", lambda x: 2 * x)
    monkeypatch.setattr(other, "compiled", cannot_load)
    with torch.enable_grad(), warnings.catch_warnings(record=True):
        other(torch.ones(2))
    assert other.failure.endswith("file too short")


def test_region_runs_eagerly_without_gradients():
    calls = []
    region = CompiledRegion("count", lambda x: x + 1)
    region.compiled = lambda x: calls.append(x) or x + 1
    with torch.no_grad():
        region(torch.zeros(1))
    assert calls == []  # acting and evaluation: the eager function
    region(torch.zeros(1))
    assert len(calls) == 1


def test_compile_agent_restores_and_pickles_eager():
    agent = _tiny_agent()
    with pytest.raises(ValueError, match="Unknown compiled regions"):
        compile_agent(agent, ["encoder", "prior_step"])
    compiled = compile_agent(agent)
    assert set(compiled.regions) == set(REGIONS)
    assert isinstance(agent.prior._belief_and_logits, CompiledRegion)
    copy = pickle.loads(pickle.dumps(agent.encoder))  # a collector worker's copy: eager
    assert not isinstance(copy.norm_silu, CompiledRegion)
    compiled.restore()
    assert "_belief_and_logits" not in vars(agent.prior)
    assert "norm_silu" not in vars(agent.encoder)


def _losses_and_gradients(loss, sample, seed: int = 1):
    torch.manual_seed(seed)
    out = loss(sample.clone())
    terms = {k: v.detach() for k, v in out.items() if isinstance(k, str) and k.startswith("loss_")}
    total = sum(v.sum() for k, v in out.items() if isinstance(k, str) and k.startswith("loss_"))
    params = [p for p in loss.parameters() if p.requires_grad]
    grads = torch.autograd.grad(total, params, allow_unused=True)
    torch.manual_seed(seed)
    _, world_model_output = loss.model_loss(sample.clone())
    weights = world_model_output.get(("next", "loss_weights"), None)
    return terms, grads, weights


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compiled_update_equals_eager(variant):
    """Same weights, same batch, same random stream: same losses, gradients and weights."""
    agent = _tiny_agent()
    sample = synthetic_replay_sample(agent, 2, 6, generator=torch.Generator().manual_seed(0))
    loss = make_variant_loss(agent, variant)
    compiled = compile_agent(agent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled.set_enabled(False)
        eager_terms, eager_grads, eager_weights = _losses_and_gradients(loss, sample)
        compiled.set_enabled(True)
        terms, grads, weights = _losses_and_gradients(loss, sample)
    assert compiled.failures == {}
    # the saliency shares the world model's encoder pass, with the regions on or off
    assert not [w for w in caught if "separate encoder pass" in str(w.message)]
    assert terms.keys() == eager_terms.keys()
    for key in terms:
        torch.testing.assert_close(terms[key], eager_terms[key], rtol=1e-4, atol=1e-6, msg=key)
    for grad, expected in zip(grads, eager_grads):
        assert (grad is None) == (expected is None)
        if grad is not None:
            torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-5)
    if VARIANT_SPECS[variant].saliency is not None:
        torch.testing.assert_close(weights, eager_weights, rtol=1e-4, atol=1e-5)
