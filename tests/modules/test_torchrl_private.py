"""The private TorchRL names torchrl_psp relies on exist and behave as assumed.

These tests fail when a TorchRL release renames or changes one of them: adapt
``torchrl_psp/_torchrl_private.py``, the one module that uses them.
"""

from __future__ import annotations

import pytest
import torch
import torchrl
from dm_control import suite
from tensordict import TensorDict
from torchrl.envs import DMControlWrapper, SerialEnv
from torchrl.modules import DreamerV3ImageEncoder, RSSMPosteriorV3
from torchrl.modules.models import model_based
from torchrl.objectives import LossModule

from torchrl_psp import _torchrl_private as private


def test_torchrl_is_the_version_the_private_names_were_checked_against():
    assert private.torchrl_version_problem(torchrl.__version__) is None, torchrl.__version__
    assert private.torchrl_version_problem("0.14.0+cu124") is None
    for other in ("0.13.2", "0.15.0", "1.14.0", "unknown"):
        assert "_torchrl_private.py" in private.torchrl_version_problem(other)
        assert other in private.torchrl_version_problem(other)


def test_channel_rms_norm_is_the_encoders_norm_and_computes_what_the_vjp_assumes():
    encoder = DreamerV3ImageEncoder(depth=2, mults=(1, 2, 4))
    norms = [layer for layer in encoder.layers if private.is_channel_rms_norm(layer)]
    assert len(norms) == 3
    assert all(type(norm) is model_based._DreamerV3ChannelRMSNorm for norm in norms)
    norm = norms[1]
    with torch.no_grad():
        norm.weight.normal_()
    y = torch.randn(2, norm.weight.shape[0], 5, 6)
    expected = y * torch.rsqrt(y.square().mean(-3, keepdim=True) + norm.eps)
    expected = expected * norm.weight[:, None, None]
    torch.testing.assert_close(norm(y), expected, rtol=1e-5, atol=1e-6)

    class Subclass(model_based._DreamerV3ChannelRMSNorm):
        pass

    assert not private.is_channel_rms_norm(Subclass(4))
    assert not private.is_channel_rms_norm(torch.nn.LayerNorm(4))


def _posterior(unimix=0.0):
    torch.manual_seed(0)
    return RSSMPosteriorV3(
        hidden_dim=8,
        num_categoricals=3,
        num_classes=4,
        rnn_hidden_dim=5,
        obs_embed_dim=6,
        unimix=unimix,
    )


def test_posterior_logits_are_the_forward_logits_without_a_draw():
    posterior = _posterior()
    belief, encoded = torch.randn(7, 5), torch.randn(7, 6)
    rng = torch.get_rng_state()
    logits = private.posterior_logits(posterior, belief, encoded)
    assert torch.equal(torch.get_rng_state(), rng)  # no sample drawn
    forward_logits, _ = posterior(belief, encoded)
    assert logits.shape == (7, 3, 4)
    torch.testing.assert_close(logits, forward_logits, rtol=0, atol=0)


def test_a_missing_private_name_is_reported_loudly(monkeypatch):
    monkeypatch.delattr(RSSMPosteriorV3, "_logits")
    with pytest.raises(RuntimeError, match="_torchrl_private.py"):
        private.posterior_logits(_posterior(), torch.randn(1, 5), torch.randn(1, 6))


@pytest.mark.parametrize("unimix", [0.0, 0.01, 0.3])
def test_unimix_and_straight_through_match_torchrl(unimix):
    posterior = _posterior(unimix)
    belief, encoded = torch.randn(7, 5), torch.randn(7, 6, requires_grad=True)
    logits = private.posterior_logits(posterior, belief, encoded)
    torch.testing.assert_close(
        private.unimix_probs(logits, unimix), model_based._unimix_probs(logits, unimix)
    )
    uniform = torch.rand(7, 3)
    theirs = model_based._straight_through_categorical(logits, unimix, uniform=uniform)
    _, state = posterior(belief, encoded, _uniform=uniform)  # the posterior's own draw
    torch.testing.assert_close(state, theirs.flatten(-2), rtol=0, atol=0)
    ours = private.straight_through(private.unimix_probs(logits, unimix), state)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    cotangent = torch.randn_like(ours)
    (grad_ours,) = torch.autograd.grad(ours, encoded, cotangent, retain_graph=True)
    (grad_theirs,) = torch.autograd.grad(theirs, encoded, cotangent)
    torch.testing.assert_close(grad_ours, grad_theirs)
    mode = private.straight_through(private.unimix_probs(logits, unimix))
    assert torch.equal(mode.argmax(-1), logits.argmax(-1))
    assert torch.equal(mode.detach().sum(-1), torch.ones(7, 3))


def test_loss_modules_clear_their_weakrefs():
    assert callable(getattr(LossModule, "_clear_weakrefs", None))

    class Loss(LossModule):
        def forward(self, tensordict):
            return tensordict

    tensordict = TensorDict({"a": torch.zeros(2)}, [2])
    private.clear_loss_weakrefs(Loss(), tensordict)  # outside torch.compile: nothing to do


def test_serial_sub_envs_and_the_wrapped_dm_control_env():
    env = SerialEnv(
        2, lambda: DMControlWrapper(suite.load("cartpole", "swingup", task_kwargs={"random": 0}))
    )
    sub_envs = private.serial_sub_envs(env)
    assert len(sub_envs) == 2 and all(isinstance(e, DMControlWrapper) for e in sub_envs)
    physics = [private.wrapped_env(e).physics for e in sub_envs]
    assert physics[0] is not physics[1] and hasattr(physics[0], "render")
    assert private.wrapped_env(object()) is None
    env.close()


def test_ray_weight_sync_timeout_is_read_by_the_sender_and_restored():
    import inspect

    from torchrl.weight_update import _ray

    before = _ray._DIST_TIMEOUT
    with private.ray_weight_sync_timeout(123):
        assert _ray._DIST_TIMEOUT.total_seconds() == 123
    assert _ray._DIST_TIMEOUT == before
    # the sender reads the module global when it makes its process group
    source = inspect.getsource(_ray.RayWeightSyncScheme._setup_distributed_connection_sender)
    assert "_DIST_TIMEOUT" in source
