"""Input gradient of TorchRL's DreamerV3 image encoder from a recorded forward pass.

The encoder is a stack of stages ``conv (stride 2) -> channel RMS norm -> SiLU``
applied to ``x - 0.5``. Given the activations recorded during the world model's own
forward pass, :func:`encoder_input_gradient` computes the vector-Jacobian product
w.r.t. the images without a second forward pass and without autograd: the
elementwise steps are written with few passes over memory in a channels-last layout,
and each stride-2 convolution's input gradient is one stride-1 convolution followed
by a pixel shuffle (:func:`conv2d_input_gradient`), the form oneDNN runs fastest on
CPU. The result is the gradient
autograd computes, up to floating-point rounding (the tests check it).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from torchrl.modules import DreamerV3ImageEncoder

from torchrl_psp._torchrl_private import is_channel_rms_norm

__all__ = [
    "EncoderPassCapture",
    "capture_encoder_pass",
    "conv2d_input_gradient",
    "encoder_input_gradient",
    "supports_encoder_capture",
]


@dataclass
class EncoderPassCapture:
    """Input shapes and outputs of an encoder's convolutions during one forward pass.

    Attributes:
        convolutions: the encoder's convolutions, in order.
        norms: the channel RMS norm that follows each convolution.
        input_shapes: shape ``(N, C, H, W)`` of each convolution's input.
        outputs: each convolution's output.
    """

    convolutions: list[nn.Conv2d]
    norms: list[nn.Module]
    input_shapes: list[torch.Size | None] = field(default_factory=list)
    outputs: list[torch.Tensor | None] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether a whole encoder pass was recorded."""
        return all(output is not None for output in self.outputs)


def _stages(encoder: nn.Module) -> list[tuple[nn.Module, nn.Module, nn.Module]] | None:
    if not isinstance(encoder, DreamerV3ImageEncoder):
        return None
    layers = list(encoder.layers)
    if len(layers) % 3:
        return None
    stages = [tuple(layers[index : index + 3]) for index in range(0, len(layers), 3)]
    for conv, norm, activation in stages:
        if not (
            isinstance(conv, nn.Conv2d)
            and conv.padding_mode == "zeros"
            and is_channel_rms_norm(norm)
            and isinstance(activation, nn.SiLU)
        ):
            return None
    return stages


def supports_encoder_capture(encoder: nn.Module) -> bool:
    """Whether :func:`capture_encoder_pass` handles ``encoder`` (a DreamerV3 image encoder).

    Examples:
        >>> supports_encoder_capture(DreamerV3ImageEncoder(depth=2, mults=(1, 2)))
        True
        >>> supports_encoder_capture(nn.Flatten())
        False
    """
    return _stages(encoder) is not None


@contextmanager
def capture_encoder_pass(encoder: nn.Module) -> Iterator[EncoderPassCapture]:
    """Records the convolutions of ``encoder``'s next forward pass (forward hooks, removed on exit).

    Yields:
        The :class:`EncoderPassCapture`; only the first encoder call inside the
        ``with`` block is recorded.

    Examples:
        >>> encoder = DreamerV3ImageEncoder(depth=2, mults=(1, 2))
        >>> with capture_encoder_pass(encoder) as capture:
        ...     _ = encoder(torch.rand(4, 3, 8, 8))
        >>> capture.complete, [tuple(shape) for shape in capture.input_shapes]
        (True, [(4, 3, 8, 8), (4, 2, 4, 4)])
    """
    stages = _stages(encoder)
    if stages is None:
        raise ValueError(
            "capture_encoder_pass needs a DreamerV3ImageEncoder (stages of convolution, "
            f"channel RMS norm and SiLU); got {type(encoder).__name__}."
        )
    capture = EncoderPassCapture(
        convolutions=[stage[0] for stage in stages],
        norms=[stage[1] for stage in stages],
        input_shapes=[None] * len(stages),
        outputs=[None] * len(stages),
    )

    def recorder(index: int):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
            if capture.outputs[index] is None:
                capture.input_shapes[index] = inputs[0].shape
                capture.outputs[index] = output

        return record

    handles = [
        conv.register_forward_hook(recorder(index))
        for index, conv in enumerate(capture.convolutions)
    ]
    try:
        yield capture
    finally:
        for handle in handles:
            handle.remove()


def _subpixel_taps(kernel: int, pad: int) -> tuple[int, int]:
    """Range ``[low, high]`` of the offsets between input and output rows, over both phases."""
    low = min(math.ceil((-phase - pad) / 2) for phase in (0, 1))
    high = max(math.floor((kernel - 1 - pad - phase) / 2) for phase in (0, 1))
    return low, high


@functools.lru_cache(maxsize=64)
def _subpixel_tap_index(
    kernel: int, pad: int, high: int, count: int, device: torch.device
) -> torch.Tensor:
    """``(2, count)`` kernel index of each phase and offset; ``kernel`` marks a missing tap."""
    index = torch.tensor([[2 * (high - m) + phase + pad for m in range(count)] for phase in (0, 1)])
    index = torch.where((index >= 0) & (index < kernel), index, kernel)
    return index.to(device)


def conv2d_input_gradient(
    grad_output: torch.Tensor, conv: nn.Conv2d, input_shape: torch.Size | tuple[int, ...]
) -> torch.Tensor:
    """Gradient w.r.t. the input of ``conv`` given the gradient of its output.

    A stride-2 convolution's input gradient is computed as one stride-1 convolution
    with the rearranged kernel (one output channel per input channel and pixel phase)
    followed by :func:`torch.nn.functional.pixel_shuffle`; other convolutions use
    :func:`torch.nn.grad.conv2d_input`.

    Examples:
        >>> conv = nn.Conv2d(3, 4, 5, stride=2, padding=2)
        >>> x = torch.randn(2, 3, 8, 8, requires_grad=True)
        >>> grad = torch.randn(2, 4, 4, 4)
        >>> (expected,) = torch.autograd.grad(conv(x), x, grad)
        >>> torch.allclose(conv2d_input_gradient(grad, conv, x.shape), expected, atol=1e-5)
        True
    """
    weight = conv.weight.detach().to(grad_output.dtype)
    height, width = input_shape[-2:]
    kernel_h, kernel_w = conv.kernel_size
    pad_h, pad_w = conv.padding if isinstance(conv.padding, tuple) else (None, None)
    subpixel = (
        conv.stride == (2, 2)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and isinstance(pad_h, int)
        and (height, width) == (2 * grad_output.shape[-2], 2 * grad_output.shape[-1])
    )
    if not subpixel:
        return torch.nn.grad.conv2d_input(
            input_shape,
            weight,
            grad_output,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
        )
    out_channels, in_channels = weight.shape[:2]
    low_h, high_h = _subpixel_taps(kernel_h, pad_h)
    low_w, high_w = _subpixel_taps(kernel_w, pad_w)
    taps_h, taps_w = high_h - low_h + 1, high_w - low_w + 1
    # Kernel tap of phase p and offset index m: u = 2 (high - m) + p + pad (the padded
    # index ``kernel`` is a zero row: taps outside the kernel contribute nothing).
    padded = F.pad(weight, (0, 1, 0, 1))
    rows = _subpixel_tap_index(kernel_h, pad_h, high_h, taps_h, weight.device)[:, None, :, None]
    cols = _subpixel_tap_index(kernel_w, pad_w, high_w, taps_w, weight.device)[None, :, None, :]
    # (O, C, 2, 2, Th, Tw) -> (C, 2, 2, O, Th, Tw) -> (4 C, O, Th, Tw)
    subpixel_kernel = padded[:, :, rows, cols].permute(1, 2, 3, 0, 4, 5)
    subpixel_kernel = subpixel_kernel.reshape(4 * in_channels, out_channels, taps_h, taps_w)
    # oneDNN convolutions are fastest in channels-last memory.
    grad = grad_output.reshape(-1, *grad_output.shape[-3:]).contiguous(
        memory_format=torch.channels_last
    )
    if high_h == -low_h and high_w == -low_w:
        phases = F.conv2d(grad, subpixel_kernel, padding=(high_h, high_w))
    else:
        phases = F.conv2d(F.pad(grad, (high_w, -low_w, high_h, -low_h)), subpixel_kernel)
    return F.pixel_shuffle(phases, 2)


def _norm_silu_vjp(conv_output: torch.Tensor, norm: nn.Module, grad: torch.Tensor) -> torch.Tensor:
    """VJP of ``silu(channel_rms_norm(y))`` w.r.t. ``y``, computed channels-last.

    With ``r = rsqrt(mean_c y^2 + eps)``, ``n = y r w`` and ``g_n = silu'(n) g``:
    ``g_y = r (w g_n - y r^2 mean_c(w g_n y))``. Returns a ``(N, C, H, W)`` tensor in
    channels-last memory (the channel reductions run over contiguous memory).
    """
    conv_output = conv_output.detach().float().movedim(-3, -1).contiguous()
    grad = grad.float().movedim(-3, -1).contiguous()
    weight = norm.weight.detach().float()
    channels = conv_output.shape[-1]
    inv_rms = torch.rsqrt(
        torch.linalg.vector_norm(conv_output, dim=-1, keepdim=True).square_() / channels + norm.eps
    )
    normalised = (conv_output * inv_rms).mul_(weight)
    scaled = torch.ops.aten.silu_backward(grad, normalised).mul_(weight)
    projection = (scaled * conv_output).sum(-1, keepdim=True)
    coefficient = projection.mul_(inv_rms.square()).div_(channels)
    result = torch.addcmul(scaled, conv_output, coefficient, value=-1.0).mul_(inv_rms)
    return result.movedim(-1, -3)


def encoder_input_gradient(capture: EncoderPassCapture, grad_encoded: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. the ``[0, 1]``-scale images of a recorded DreamerV3 encoder pass.

    Args:
        capture: the recording of the pass (see :func:`capture_encoder_pass`).
        grad_encoded: gradient w.r.t. the encoder output, ``(*batch, E)``.

    Returns:
        ``(N, C, H, W)`` float32 (channels-last memory), ``N`` the number of images.

    Examples:
        >>> encoder = DreamerV3ImageEncoder(depth=2, mults=(1, 2))
        >>> images = torch.rand(3, 3, 8, 8, requires_grad=True)
        >>> with capture_encoder_pass(encoder) as capture:
        ...     encoded = encoder(images)
        >>> grad = torch.randn_like(encoded)
        >>> (expected,) = torch.autograd.grad(encoded, images, grad)
        >>> torch.allclose(encoder_input_gradient(capture, grad), expected, atol=1e-5)
        True
    """
    if not capture.complete:
        raise ValueError("The capture holds no complete encoder pass.")
    last = capture.outputs[-1]
    grad = grad_encoded.float().reshape(last.shape)
    for conv, norm, input_shape, output in zip(
        reversed(capture.convolutions),
        reversed(capture.norms),
        reversed(capture.input_shapes),
        reversed(capture.outputs),
    ):
        grad = conv2d_input_gradient(_norm_silu_vjp(output, norm, grad), conv, input_shape)
    return grad
