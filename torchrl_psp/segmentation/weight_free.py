"""Segmenters that need no checkpoint: superpixels for ``"segments"`` and a one-shot colour
classifier for ``"task_mask"``.

Both run on the CPU in about a millisecond per 64x64 frame, so they can segment a
replay buffer offline or stand in for SAM / PerSAM where no checkpoint or GPU is at
hand. Their quality against the ground-truth transform is measured by
``benchmarks/segmentation_cost.py quality`` (see ``docs/segmentation.rst``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from torchrl_psp.segmentation.base import SegmentationTransform
from torchrl_psp.segmentation.reference import check_reference

__all__ = ["ColorTaskMask", "SuperpixelSegmentation", "color_posterior"]

_METHODS = ("felzenszwalb", "slic")


class SuperpixelSegmentation(SegmentationTransform):
    """Writes ``"segments"`` from a graph-based or superpixel segmentation (scikit-image).

    ``method="felzenszwalb"`` (default) is Felzenszwalb and Huttenlocher's graph-based
    segmentation: regions grow while the colour difference across their border is
    small compared with their internal variation (``scale``), so uniform bodies become
    one segment and textured backgrounds many. ``method="slic"`` gives compact
    superpixels of roughly equal size. Every pixel gets an id ``>= 1`` (this segmenter
    never leaves pixels unassigned).

    Args:
        method: ``"felzenszwalb"`` or ``"slic"``.
        scale: Felzenszwalb's scale (larger: bigger segments).
        sigma: Gaussian pre-smoothing of the image (pixels).
        min_size: Felzenszwalb's minimum segment size (pixels).
        n_segments: SLIC's target number of segments.
        compactness: SLIC's colour/space trade-off.
        frames_per_batch: frames per call.
        cache_size: frames kept in the result cache (``0``, the default, disables it).
        in_keys: pixel entries. Defaults to ``["pixels"]``.
        out_keys: output entries. Defaults to ``["segments"]``.

    Examples:
        >>> frames = torch.zeros(2, 16, 16, 3, dtype=torch.uint8)
        >>> frames[:, 4:10, 4:10] = 200
        >>> segments = SuperpixelSegmentation().segment(frames)
        >>> segments.dtype, segments.shape, bool(segments.min() >= 1)
        (torch.int16, torch.Size([2, 16, 16]), True)
    """

    output = "segments"

    def __init__(
        self,
        method: str = "felzenszwalb",
        *,
        scale: float = 100.0,
        sigma: float = 0.3,
        min_size: int = 3,
        n_segments: int = 200,
        compactness: float = 10.0,
        frames_per_batch: int = 64,
        cache_size: int = 0,
        in_keys: Sequence | None = None,
        out_keys: Sequence | None = None,
    ):
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
        super().__init__(
            in_keys, out_keys, frames_per_batch=frames_per_batch, cache_size=cache_size
        )
        self.method = method
        self.params = (
            {"scale": scale, "sigma": sigma, "min_size": min_size}
            if method == "felzenszwalb"
            else {"n_segments": n_segments, "compactness": compactness, "sigma": sigma}
        )

    def _segment(self, frames: torch.Tensor) -> torch.Tensor:
        from skimage.segmentation import felzenszwalb, slic

        out = []
        for frame in frames.cpu().numpy():
            if self.method == "felzenszwalb":
                labels = felzenszwalb(frame, **self.params) + 1
            else:
                labels = slic(frame, start_label=1, **self.params)
            out.append(torch.from_numpy(labels.astype(np.int16)))
        return torch.stack(out)


def color_posterior(
    image: torch.Tensor,
    mask: torch.Tensor,
    bins: int = 32,
    smoothing: float = 0.0,
    prior: float | None = None,
) -> torch.Tensor:
    """``P(task | colour)`` per colour bin, from a reference: a ``(bins**3,)`` table.

    Colours are quantised to ``bins`` levels per channel; task and background pixels of
    the reference are counted per bin, optionally blurred over neighbouring bins with a
    Gaussian of ``smoothing`` bins, and normalised. The posterior uses the prior ``prior``
    (``None``: the task fraction of the reference). Colours never seen in the reference
    get probability 0.

    Examples:
        >>> image = torch.zeros(4, 4, 3, dtype=torch.uint8)
        >>> image[:2] = 255
        >>> table = color_posterior(image, image[..., 0] > 0, bins=4)
        >>> table[-1].item(), table[0].item()
        (1.0, 0.0)
    """
    image, mask = check_reference(image, mask)
    index = _bin_index(image, bins)
    fg = torch.bincount(index[mask], minlength=bins**3).float()
    bg = torch.bincount(index[~mask], minlength=bins**3).float()
    if smoothing > 0:
        fg, bg = _blur3d(fg, bins, smoothing), _blur3d(bg, bins, smoothing)
    pi = float(mask.float().mean()) if prior is None else float(prior)
    fg = fg / fg.sum() * pi
    bg = bg / bg.sum().clamp_min(1e-12) * (1 - pi)
    return torch.where(fg + bg > 0, fg / (fg + bg).clamp_min(1e-12), 0.0)


def _bin_index(frames: torch.Tensor, bins: int) -> torch.Tensor:
    q = frames.long() * bins // 256
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def _blur3d(hist: torch.Tensor, bins: int, sigma: float) -> torch.Tensor:
    radius = max(1, int(np.ceil(2 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    h = hist.reshape(1, 1, bins, bins, bins)
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        padding = [0, 0, 0]
        padding[axis] = radius
        h = F.conv3d(h, kernel.reshape(shape), padding=tuple(padding))
    return h.flatten()


class ColorTaskMask(SegmentationTransform):
    """Writes ``"task_mask"`` with a one-shot colour classifier fitted on a reference.

    A weight-free stand-in for PerSAM-F: the reference ``(image, mask)`` (e.g.
    :func:`~torchrl_psp.segmentation.reference_from_env`) gives a table
    ``P(task | colour)`` (:func:`color_posterior`); a pixel is task when its colour's
    probability exceeds ``threshold``. Works wherever the agent's colours differ from
    the background's (true of DeepMind Control bodies); distractor pixels that happen to
    share the agent's colour are false positives.

    Args:
        reference: ``(image, mask)``: uint8 ``(H, W, 3)`` and bool ``(H, W)``, or batches.
        bins: quantisation levels per colour channel.
        smoothing: Gaussian blur of the colour histograms, in bins.
        prior: prior task probability (``None``: the reference's task fraction).
        threshold: decision threshold on ``P(task | colour)``.
        frames_per_batch: frames per call.
        cache_size: frames kept in the result cache (``0``, the default, disables it).
        in_keys: pixel entries. Defaults to ``["pixels"]``.
        out_keys: output entries. Defaults to ``["task_mask"]``.

    Examples:
        >>> image = torch.zeros(8, 8, 3, dtype=torch.uint8)
        >>> image[2:5, 2:5] = torch.tensor([230, 120, 40], dtype=torch.uint8)
        >>> t = ColorTaskMask((image, image[..., 0] > 0))
        >>> t.segment(image).sum().item()
        9
    """

    output = "task_mask"

    def __init__(
        self,
        reference: tuple[Any, Any],
        *,
        bins: int = 64,
        smoothing: float = 1.0,
        prior: float | None = None,
        threshold: float = 0.5,
        frames_per_batch: int = 256,
        cache_size: int = 0,
        in_keys: Sequence | None = None,
        out_keys: Sequence | None = None,
    ):
        if not isinstance(reference, (tuple, list)) or len(reference) != 2:
            raise ValueError(
                "reference must be an (image, mask) pair, e.g. reference_from_env(gt_env); got "
                f"{type(reference).__name__}."
            )
        if not 2 <= bins <= 256:
            raise ValueError(f"bins must be in [2, 256], got {bins}.")
        super().__init__(
            in_keys, out_keys, frames_per_batch=frames_per_batch, cache_size=cache_size
        )
        self.bins = int(bins)
        self.threshold = float(threshold)
        table = color_posterior(reference[0], reference[1], bins, smoothing, prior)
        self.register_buffer("posterior", table)

    def _segment(self, frames: torch.Tensor) -> torch.Tensor:
        table = self.posterior
        return table[_bin_index(frames.to(table.device), self.bins)] > self.threshold
