"""TorchRL's DreamerV3 image encoder and decoder, computed in channels-last memory.

The two classes subclass :class:`~torchrl.modules.DreamerV3ImageEncoder` and
:class:`~torchrl.modules.DreamerV3ImageDecoder` and keep their parameters, state-dict
keys and layers (a checkpoint of either loads into the other). Only the forward pass
differs, in two ways that leave the computation the same up to floating-point rounding:

* the feature maps are kept in channels-last memory (``N, H, W, C`` strides): oneDNN's
  convolutions run faster on CPU in that layout, and the channel RMS norm then reduces
  over contiguous memory;
* each ``channel RMS norm -> SiLU`` pair is one call of :func:`channel_rms_norm_silu`,
  a function that :func:`torchrl_psp.modules.compile_agent` can replace with a compiled
  version (one fused kernel forward and one backward, instead of about ten passes over
  the activation map).

The convolutions stay module calls, so forward hooks on them (the encoder-pass capture
of the saliency, :func:`~torchrl_psp.modules.capture_encoder_pass`) see every call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torchrl.modules import DreamerV3ImageDecoder, DreamerV3ImageEncoder

from torchrl_psp._torchrl_private import is_channel_rms_norm

__all__ = ["ChannelsLastImageDecoder", "ChannelsLastImageEncoder", "channel_rms_norm_silu"]

NormSiLU = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def channel_rms_norm_silu(value: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    r"""``silu(w * y / sqrt(mean_c y^2 + eps))`` over the channels of ``(N, C, H, W)`` maps.

    DreamerV3's channel RMS norm followed by SiLU, as TorchRL's
    ``_DreamerV3ChannelRMSNorm`` and :class:`torch.nn.SiLU` compute them (float32
    normalisation, result in the input's dtype).

    Examples:
        >>> y = torch.tensor([[[[3.0]], [[4.0]]]])  # one pixel, channels (3, 4)
        >>> out = channel_rms_norm_silu(y, torch.ones(2), 0.0)  # rms = sqrt(12.5)
        >>> torch.allclose(out.flatten(), F.silu(torch.tensor([3.0, 4.0]) / 12.5**0.5))
        True
    """
    channels_last = value.movedim(-3, -1)
    normalised = F.rms_norm(channels_last.float(), (weight.shape[0],), weight.float(), eps).to(
        value.dtype
    )
    return F.silu(normalised.movedim(-1, -3))


class _FusedNormSiLU:
    """The ``norm -> SiLU`` function of a codec: eager by default, compiled on request."""

    norm_silu: NormSiLU = staticmethod(channel_rms_norm_silu)

    def _norm_silu(self, value: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return self.norm_silu(value, norm.weight, norm.eps)


def _check_layers(module: nn.Module, stage: type[nn.Module], last: bool) -> None:
    """The layers the channels-last forward walks: ``(stage, channel RMS norm, SiLU)``
    repeated, then (``last``) one more ``stage`` layer."""
    layers = list(module.layers)
    tail = layers[-1:] if last else []
    body = layers[:-1] if last else layers
    valid = len(body) % 3 == 0 and all(isinstance(layer, stage) for layer in tail + body[::3])
    valid = valid and all(is_channel_rms_norm(layer) for layer in body[1::3])
    valid = valid and all(isinstance(layer, nn.SiLU) for layer in body[2::3])
    if not valid:
        raise TypeError(
            f"{type(module).__name__} expects the layers of TorchRL 0.14's image codec "
            f"({stage.__name__}, channel RMS norm, SiLU, ...); "
            f"got {[type(layer).__name__ for layer in layers]}."
        )


class ChannelsLastImageEncoder(_FusedNormSiLU, DreamerV3ImageEncoder):
    """:class:`~torchrl.modules.DreamerV3ImageEncoder` in channels-last memory.

    Same arguments, parameters and output as TorchRL's encoder (see the module
    docstring for what differs: the memory layout and the fused norm-SiLU call).

    Examples:
        >>> encoder = ChannelsLastImageEncoder(depth=2, mults=(1, 2))
        >>> reference = DreamerV3ImageEncoder(depth=2, mults=(1, 2))
        >>> _ = reference.load_state_dict(encoder.state_dict())
        >>> image = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
        >>> torch.allclose(encoder(image), reference(image), atol=1e-5)
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_layers(self, nn.Conv2d, last=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if not image.is_floating_point():
            image = image.float() / 255.0
        image = image - 0.5
        batch_shape = image.shape[:-3]
        value = image.reshape(-1, *image.shape[-3:]).contiguous(memory_format=torch.channels_last)
        layers = list(self.layers)
        for index in range(0, len(layers), 3):
            convolution, norm = layers[index], layers[index + 1]
            value = self._norm_silu(convolution(value), norm)
        return value.reshape(*batch_shape, -1)


class ChannelsLastImageDecoder(_FusedNormSiLU, DreamerV3ImageDecoder):
    """:class:`~torchrl.modules.DreamerV3ImageDecoder` in channels-last memory.

    Same arguments, parameters and output as TorchRL's decoder (see the module
    docstring for what differs).

    Examples:
        >>> decoder = ChannelsLastImageDecoder(12, (3, 16, 16), depth=4, mults=(1, 2),
        ...                                    num_blocks=2)
        >>> reference = DreamerV3ImageDecoder(12, (3, 16, 16), depth=4, mults=(1, 2),
        ...                                   num_blocks=2)
        >>> _ = reference.load_state_dict(decoder.state_dict())
        >>> z, h = torch.randn(5, 8), torch.randn(5, 4)
        >>> torch.allclose(decoder(z, h), reference(z, h), atol=1e-5)
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_layers(self, nn.ConvTranspose2d, last=True)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        value = inputs[0] if len(inputs) == 1 else torch.cat(inputs, -1)
        batch_shape = value.shape[:-1]
        hidden = self.projection(value.reshape(-1, value.shape[-1]))
        hidden = hidden.reshape(-1, *self.initial_shape)
        hidden = self._norm_silu(
            hidden.contiguous(memory_format=torch.channels_last), self.projection_norm
        )
        layers = list(self.layers)
        index = 0
        while index < len(layers):  # transposed convolution, then (but last) norm and SiLU
            hidden = layers[index](hidden)
            if index + 1 < len(layers):
                hidden = self._norm_silu(hidden, layers[index + 1])
                index += 3
            else:
                index += 1
        image = hidden + 0.5
        return image.reshape(*batch_shape, *image.shape[-3:])
