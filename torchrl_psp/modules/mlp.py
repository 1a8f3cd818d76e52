"""TorchRL's DreamerV3 MLP with each ``RMS norm -> SiLU`` pair as one replaceable call."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torchrl.modules import DreamerV3MLP

__all__ = ["NormSiLUMLP", "rms_norm_silu"]

NormSiLU = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def rms_norm_silu(value: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    r"""``silu(w * x / sqrt(mean x^2 + eps))`` over the last dimension.

    DreamerV3's RMS norm (TorchRL's ``_DreamerV3RMSNorm``: float32 normalisation, result
    in the input's dtype) followed by SiLU.

    Examples:
        >>> out = rms_norm_silu(torch.tensor([[3.0, 4.0]]), torch.ones(2), 0.0)
        >>> torch.allclose(out, F.silu(torch.tensor([[3.0, 4.0]]) / 12.5**0.5))
        True
    """
    normalised = F.rms_norm(value.float(), (weight.shape[0],), weight.float(), eps)
    return F.silu(normalised.to(value.dtype))


class NormSiLUMLP(DreamerV3MLP):
    """:class:`~torchrl.modules.DreamerV3MLP` whose norm-SiLU pairs call :attr:`norm_silu`.

    Same arguments, parameters (state-dict keys) and output as TorchRL's MLP. Each hidden
    layer ``linear -> RMS norm -> SiLU`` runs the linear layer, then one call of
    :func:`rms_norm_silu`, a function :func:`torchrl_psp.modules.compile_agent` replaces
    with a compiled version (one fused kernel instead of about six passes).

    Examples:
        >>> mlp = NormSiLUMLP(6, 4, depth=2, num_cells=8)
        >>> reference = DreamerV3MLP(6, 4, depth=2, num_cells=8)
        >>> _ = reference.load_state_dict(mlp.state_dict())
        >>> x, y = torch.randn(3, 2), torch.randn(3, 4)
        >>> torch.allclose(mlp(x, y), reference(x, y), atol=1e-6)
        True
    """

    norm_silu: NormSiLU = staticmethod(rms_norm_silu)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        layers = list(self.model)
        hidden, output = (layers[:-1], layers[-1:]) if len(layers) % 3 else (layers, [])
        valid = all(isinstance(layer, nn.Linear) for layer in hidden[::3] + output)
        valid = valid and all(isinstance(layer, nn.SiLU) for layer in hidden[2::3])
        valid = valid and all(hasattr(layer, "eps") for layer in hidden[1::3])
        if not valid or len(hidden) % 3:
            raise TypeError(
                "NormSiLUMLP expects the layers of TorchRL 0.14's DreamerV3MLP (Linear, RMS "
                f"norm, SiLU, ..., Linear); got {[type(layer).__name__ for layer in layers]}."
            )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        value = inputs[0] if len(inputs) == 1 else torch.cat(inputs, -1)
        layers = list(self.model)
        for index in range(0, len(layers) - len(layers) % 3, 3):
            value = self.norm_silu(
                layers[index](value), layers[index + 1].weight, layers[index + 1].eps
            )
        if len(layers) % 3:
            value = layers[-1](value)
        return value
