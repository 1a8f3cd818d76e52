"""PSPModelLoss: one saliency call, the shared encoder pass, and its warned fallback."""

from __future__ import annotations

import warnings

import pytest
import torch

from torchrl_psp.modules import synthetic_replay_sample
from torchrl_psp.objectives import make_model_loss


def _weights(loss, sample, seed=0):
    torch.manual_seed(seed)  # the RSSM draws its posterior samples
    _, output = loss(sample)
    return output["next", "loss_weights"]


def test_shared_pass_runs_the_encoder_once_and_does_not_warn(tiny_agent):
    loss = make_model_loss(tiny_agent, "psp")
    sample = synthetic_replay_sample(tiny_agent, 2, 3)
    calls = []
    handle = tiny_agent.encoder.register_forward_hook(lambda *args: calls.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        torch.manual_seed(0)
        _, output = loss(sample)
    handle.remove()
    assert len(calls) == 1
    assert output["next", "loss_weights"].shape == (2, 3, 16, 16)


def test_no_grad_falls_back_to_the_same_weights_with_one_warning(tiny_agent):
    loss = make_model_loss(tiny_agent, "psp")
    sample = synthetic_replay_sample(tiny_agent, 2, 3)
    expected = _weights(loss, sample)
    with torch.no_grad():
        with pytest.warns(UserWarning, match="separate encoder pass: gradients are disabled"):
            weights = _weights(loss, sample)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # warned once per saliency
            _weights(loss, sample)
    torch.testing.assert_close(weights, expected, rtol=1e-5, atol=1e-5)


def test_share_encoder_pass_false_is_a_choice_not_a_fallback(tiny_agent):
    loss = make_model_loss(tiny_agent, "psp", share_encoder_pass=False)
    sample = synthetic_replay_sample(tiny_agent, 2, 3)
    calls = []
    handle = tiny_agent.encoder.register_forward_hook(lambda *args: calls.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _weights(loss, sample)
    handle.remove()
    assert len(calls) == 2  # the world model's pass and the saliency's own
