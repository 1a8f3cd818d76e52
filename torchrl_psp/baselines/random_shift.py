"""DrQ-v2's image augmentation: a random shift of up to ``pad`` pixels, as a TorchRL transform."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tensordict.utils import NestedKey
from torchrl.data import Bounded, TensorSpec, Unbounded
from torchrl.envs import Transform

__all__ = ["RandomShift", "shift_images"]


def _sampling_grid(
    shifts: torch.Tensor, height: int, width: int, pad: int, dtype: torch.dtype
) -> torch.Tensor:
    """``grid_sample`` coordinates of an ``(H, W)`` window of the padded image, moved by ``shifts``.

    Coordinates are normalised to ``[-1, 1]`` over the padded image (``align_corners=False``:
    -1 and 1 are the outer edges of its border pixels). Output pixel ``(i, j)`` samples the
    centre of padded pixel ``(i + dy, j + dx)``.
    """
    padded_h, padded_w = height + 2 * pad, width + 2 * pad
    rows = (2 * torch.arange(height, dtype=dtype) + 1) / padded_h - 1
    cols = (2 * torch.arange(width, dtype=dtype) + 1) / padded_w - 1
    ys = rows.view(1, height, 1) + (2 * shifts[:, 0].to(dtype) / padded_h).view(-1, 1, 1)
    xs = cols.view(1, 1, width) + (2 * shifts[:, 1].to(dtype) / padded_w).view(-1, 1, 1)
    # grid_sample reads (x, y) pairs in its last dimension.
    return torch.stack(torch.broadcast_tensors(xs, ys), dim=-1)


def shift_images(images: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    """Shifts each image by an integer offset after replicate-padding it by ``pad`` pixels.

    The shifted image is sampled bilinearly (``grid_sample``) from the padded one, as
    DrQ-v2 does; with integer offsets it equals the ``(H, W)`` crop of the padded image
    whose top-left corner is ``(dy, dx)``.

    Args:
        images: ``(N, C, H, W)`` floating-point images.
        shifts: ``(N, 2)`` integer offsets ``(dy, dx)``, each in ``[0, 2 * pad]``
            (``(pad, pad)`` leaves an image unchanged).
        pad: border added on each side (replicating the edge pixels).

    Examples:
        >>> image = torch.arange(9.0).view(1, 1, 3, 3)
        >>> shift_images(image, torch.tensor([[0, 2]]), pad=1)[0, 0]  # content 1 down, 1 left
        tensor([[1., 2., 2.],
                [1., 2., 2.],
                [4., 5., 5.]])
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"images must be (N, C, H, W) floating point, got {tuple(images.shape)} {images.dtype}."
        )
    if shifts.shape != (images.shape[0], 2):
        raise ValueError(
            f"shifts must have shape ({images.shape[0]}, 2), got {tuple(shifts.shape)}."
        )
    if pad == 0:
        return images
    height, width = images.shape[-2:]
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    grid = _sampling_grid(shifts, height, width, pad, images.dtype).to(images.device)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class RandomShift(Transform):
    """Random shift of images by up to ``pad`` pixels each way (DrQ-v2's augmentation).

    Each image (every leading index of ``[..., C, H, W]``) is replicate-padded by ``pad``
    pixels on each side and a ``(H, W)`` window is taken at an offset drawn uniformly from
    ``{0, ..., 2 * pad}`` on each axis, by bilinear sampling (:func:`shift_images`). All
    channels of an image share its offset (a stack of frames moves as one); each key and
    each call draws new offsets. Images come back as ``float32`` on the same 0..255 (or
    0..1) scale as they came in: ``uint8`` images are converted.

    Use it on its own (``RandomShift()(tensordict)``), in a replay buffer
    (``ReplayBuffer(..., transform=RandomShift())``: each sample is augmented) or in an
    environment (its observation specs become ``float32``).
    :class:`~torchrl_psp.baselines.DrQv2Loss` applies it to the observation and the
    next observation of every update.

    Args:
        pad: the largest shift, in pixels (DrQ-v2: 4).
        in_keys: the image entries (default ``["pixels", ("next", "pixels")]``).
        out_keys: where the shifted images go (default: ``in_keys``).

    Examples:
        >>> from tensordict import TensorDict
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> data = TensorDict({"pixels": torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8)}, [8])
        >>> out = RandomShift(pad=4, in_keys=["pixels"])(data.clone())
        >>> out["pixels"].shape, out["pixels"].dtype
        (torch.Size([8, 3, 64, 64]), torch.float32)
        >>> bool(((out["pixels"][..., 8:-8, 8:-8] - data["pixels"][..., 8:-8, 8:-8].float()).abs().sum() > 0))
        True
        >>> bool((out["pixels"] >= 0).all() and (out["pixels"] <= 255).all())
        True
    """

    def __init__(
        self,
        pad: int = 4,
        in_keys: Sequence[NestedKey] | None = None,
        out_keys: Sequence[NestedKey] | None = None,
    ):
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise ValueError(f"pad must be an integer >= 0, got {pad!r}.")
        if in_keys is None:
            in_keys = ["pixels", ("next", "pixels")]
        in_keys = list(in_keys)
        super().__init__(in_keys=in_keys, out_keys=list(in_keys if out_keys is None else out_keys))
        self.pad = pad

    def _apply_transform(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim < 3:
            raise ValueError(
                f"RandomShift reads images [..., C, H, W]; got shape {tuple(images.shape)}."
            )
        batch, (channels, height, width) = images.shape[:-3], images.shape[-3:]
        flat = images.reshape(-1, channels, height, width)
        flat = flat.float() if not flat.is_floating_point() else flat
        shifts = torch.randint(0, 2 * self.pad + 1, (flat.shape[0], 2), device=flat.device)
        return shift_images(flat, shifts, self.pad).reshape(*batch, channels, height, width)

    def _reset(self, tensordict, tensordict_reset):
        tolerant = self.missing_tolerance
        self.set_missing_tolerance(True)  # the reset data has no "next" images
        try:
            return self._call(tensordict_reset)
        finally:
            self.set_missing_tolerance(tolerant)

    def transform_observation_spec(self, observation_spec: TensorSpec) -> TensorSpec:
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            if in_key not in observation_spec.keys(True):
                continue
            spec = observation_spec[in_key]
            if isinstance(spec, Bounded):
                new = Bounded(
                    spec.space.low.float(),
                    spec.space.high.float(),
                    spec.shape,
                    dtype=torch.float32,
                    device=spec.device,
                )
            else:
                new = Unbounded(spec.shape, dtype=torch.float32, device=spec.device)
            observation_spec[out_key] = new
        return observation_spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pad={self.pad}, in_keys={self.in_keys})"
