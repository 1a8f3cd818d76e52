"""The hand-written encoder input gradient equals autograd's."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchrl.modules import DreamerV3ImageEncoder

from torchrl_psp.modules import (
    capture_encoder_pass,
    conv2d_input_gradient,
    encoder_input_gradient,
    supports_encoder_capture,
)


@pytest.mark.parametrize(
    "kernel,stride,padding,size",
    [
        (5, 2, 2, 16),
        (3, 2, 1, 8),
        (7, 2, 3, 12),
        (5, 2, 1, 10),
        (4, 2, 1, 8),
        (5, 2, 2, 9),
        (3, 1, 1, 6),
    ],
)
def test_conv2d_input_gradient_matches_autograd(kernel, stride, padding, size):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, kernel, stride=stride, padding=padding).double()
    x = torch.randn(2, 3, size, size, dtype=torch.float64, requires_grad=True)
    y = conv(x)
    grad = torch.randn_like(y)
    (expected,) = torch.autograd.grad(y, x, grad)
    torch.testing.assert_close(
        conv2d_input_gradient(grad, conv, x.shape), expected, rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize(
    "mults,kernel,size", [((1, 2), 5, 16), ((2, 3, 4, 4), 5, 64), ((1, 2, 2), 3, 24)]
)
def test_encoder_input_gradient_matches_autograd(mults, kernel, size):
    torch.manual_seed(0)
    encoder = DreamerV3ImageEncoder(depth=3, mults=mults, kernel_size=kernel).double()
    with torch.no_grad():
        for module in encoder.modules():
            if hasattr(module, "eps") and hasattr(module, "weight"):
                module.weight.uniform_(0.5, 1.5)
    images = torch.rand(2, 3, 3, size, size, dtype=torch.float64, requires_grad=True)
    assert supports_encoder_capture(encoder)
    with capture_encoder_pass(encoder) as capture:
        encoded = encoder(images)
        encoder(images)  # only the first call is recorded
    grad = torch.randn_like(encoded)
    (expected,) = torch.autograd.grad(encoded, images, grad)
    # TorchRL's channel RMS norm computes in float32: compare at float32 precision.
    result = encoder_input_gradient(capture, grad).reshape(images.shape)
    scale = float(expected.abs().max())
    torch.testing.assert_close(result.double(), expected, rtol=0, atol=1e-5 * scale)


def test_capture_hooks_are_removed_and_checked():
    encoder = DreamerV3ImageEncoder(depth=2, mults=(1, 2))
    with capture_encoder_pass(encoder) as capture:
        pass
    assert not capture.complete
    assert all(not conv._forward_hooks for conv in capture.convolutions)
    with pytest.raises(ValueError, match="no complete encoder pass"):
        encoder_input_gradient(capture, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="DreamerV3ImageEncoder"):
        with capture_encoder_pass(nn.Sequential(nn.Conv2d(3, 3, 3))):
            pass
