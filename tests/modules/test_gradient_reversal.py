"""GradientReversal and AdversarialActionHead: the reversed gradient, checked against two backward passes."""

from __future__ import annotations

import pytest
import torch

from torchrl_psp.modules import AdversarialActionHead, GradientReversal, gradient_reversal


def test_forward_is_identity_and_backward_is_minus_scale():
    x = torch.randn(3, 4, requires_grad=True)
    y = GradientReversal(scale=2.5)(x)
    assert torch.equal(y, x)
    upstream = torch.randn(3, 4)
    y.backward(upstream)
    torch.testing.assert_close(x.grad, -2.5 * upstream, rtol=0, atol=0)


def test_zero_scale_blocks_the_gradient():
    x = torch.randn(5, requires_grad=True)
    gradient_reversal(x, 0.0).sum().backward()
    assert torch.equal(x.grad, torch.zeros(5))


def test_negative_scale_is_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        GradientReversal(-1.0)


@pytest.mark.parametrize("epsilon", [1.0, 1e3])
def test_one_backward_gives_encoder_wm_grad_minus_eps_adv_grad(epsilon):
    """Encoder: grad(L_wm) - eps * grad(L_adv); head: +grad(L_adv); pixels: nothing."""
    torch.manual_seed(0)
    # Double precision: the comparison is exact up to summation-order rounding.
    encoder = torch.nn.Linear(6, 5).double()
    head = AdversarialActionHead(5, 2, depth=1, num_cells=8, epsilon=epsilon).double()
    pixels = torch.randn(4, 3, 6, dtype=torch.float64)
    action = torch.randn(4, 3, 2, dtype=torch.float64)

    def world_model_loss(encoded):
        return (encoded.tanh() - 0.3).square().sum()

    def adversarial_loss(prediction):
        return (prediction - action).square().sum(-1).mean()

    encoder_params = list(encoder.parameters())
    head_params = list(head.parameters())
    # Reference: two separate backward passes, the head run without the reversal layer.
    encoded = encoder(pixels)
    wm_grads = torch.autograd.grad(world_model_loss(encoded), encoder_params)
    adv = adversarial_loss(head.mlp(encoder(pixels)))
    adv_grads = torch.autograd.grad(adv, encoder_params + head_params)

    # One backward pass through the reversal layer.
    encoded = encoder(pixels)
    total = world_model_loss(encoded) + adversarial_loss(head(encoded))
    total.backward()
    for param, wm_grad, adv_grad in zip(encoder_params, wm_grads, adv_grads[: len(encoder_params)]):
        torch.testing.assert_close(param.grad, wm_grad - epsilon * adv_grad, rtol=1e-12, atol=1e-12)
    for param, adv_grad in zip(head_params, adv_grads[len(encoder_params) :]):
        torch.testing.assert_close(param.grad, adv_grad, rtol=1e-12, atol=1e-12)
    assert pixels.grad is None and not pixels.requires_grad


def test_head_rejects_wrong_width():
    head = AdversarialActionHead(5, 2, depth=1, num_cells=8)
    with pytest.raises(ValueError, match=r"\(\*batch, 5\)"):
        head(torch.randn(2, 4))
    assert head.epsilon == 1e3
