"""Gradient reversal: identity forward, ``-scale`` times the gradient backward."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GradientReversal", "gradient_reversal"]


class _GradientReversalFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output * (-ctx.scale), None


def gradient_reversal(value: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Returns ``value`` unchanged; its gradient is multiplied by ``-scale`` on the way back.

    Args:
        value: any tensor.
        scale: non-negative factor of the reversed gradient.

    Examples:
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> gradient_reversal(x, scale=3.0).sum().backward()
        >>> x.grad
        tensor([-3., -3.])
    """
    return _GradientReversalFunction.apply(value, float(scale))


class GradientReversal(nn.Module):
    """Gradient-reversal layer of scale ``epsilon`` (PSP Eqs. 3-4, Ganin & Lempitsky 2015).

    The forward pass is the identity. In the backward pass the incoming gradient is
    multiplied by ``-scale``: a head placed after this layer descends its loss, while
    every module before it receives ``-scale`` times the gradient of that loss, in the
    same backward pass as every other loss.

    Args:
        scale: factor ``epsilon`` of the reversed gradient (PSP: ``1e3``). Must be
            non-negative; ``0`` blocks the gradient (a stop-gradient).

    Examples:
        >>> layer = GradientReversal(scale=1e3)
        >>> x = torch.ones(2, requires_grad=True)
        >>> y = layer(x)
        >>> torch.equal(y, x)
        True
        >>> (2 * y).sum().backward()
        >>> x.grad
        tensor([-2000., -2000.])
    """

    def __init__(self, scale: float = 1e3):
        super().__init__()
        if not scale >= 0:
            raise ValueError(f"GradientReversal scale must be non-negative, got {scale}.")
        self.scale = float(scale)

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return gradient_reversal(value, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"
