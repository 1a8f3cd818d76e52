"""PSP's adversarial head: predicts the previous action from the image encoding."""

from __future__ import annotations

import torch
from torch import nn
from torchrl.modules import DreamerV3MLP

from torchrl_psp.modules.gradient_reversal import GradientReversal

__all__ = ["AdversarialActionHead"]


class AdversarialActionHead(nn.Module):
    """MLP ``omega`` predicting ``a_{t-1}`` from the encoder output ``e_t`` (PSP Eq. 3).

    A :class:`GradientReversal` layer of scale ``epsilon`` sits between the encoder
    output and the MLP, so that one backward pass of ``L_adv = (a_hat - a)^2`` gives
    the head ``+grad L_adv`` and the encoder ``-epsilon * grad L_adv`` (PSP Eq. 4 and
    Algorithm 1, lines 12-14). The head never sees the pixels themselves: it reads the
    encoding, which the caller computes from replay images that carry no gradient.

    Args:
        in_features: width of the encoder output.
        action_dim: width of the action vector.
        depth: hidden layers of the MLP (RMS-normalised SiLU layers as DreamerV3's).
        num_cells: width of the hidden layers.
        epsilon: scale of the reversed gradient reaching the encoder (PSP: ``1e3``).

    Examples:
        >>> head = AdversarialActionHead(in_features=8, action_dim=2, depth=1, num_cells=16)
        >>> encoded = torch.randn(4, 3, 8, requires_grad=True)
        >>> head(encoded).shape
        torch.Size([4, 3, 2])
    """

    def __init__(
        self,
        in_features: int,
        action_dim: int,
        *,
        depth: int = 2,
        num_cells: int = 256,
        epsilon: float = 1e3,
    ):
        super().__init__()
        self.reversal = GradientReversal(epsilon)
        self.mlp = DreamerV3MLP(in_features, action_dim, depth=depth, num_cells=num_cells)
        self.in_features = in_features
        self.action_dim = action_dim

    @property
    def epsilon(self) -> float:
        """Scale of the reversed gradient given to the encoder."""
        return self.reversal.scale

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        if encoded.shape[-1] != self.in_features:
            raise ValueError(
                f"AdversarialActionHead expects encodings of shape (*batch, {self.in_features}), "
                f"got {tuple(encoded.shape)}."
            )
        return self.mlp(self.reversal(encoded))
