"""PSP's loss weights: object aggregation of a salience map (PSP Eq. 2 and the text after it)."""

from __future__ import annotations

import torch

__all__ = [
    "finite_magnitude",
    "per_image_quantile",
    "segment_mean",
    "segment_weights",
    "weight_statistics",
]


def per_image_quantile(values: torch.Tensor, quantile: float) -> torch.Tensor:
    """Quantile of each row of ``values`` ``(N, P)``, linear interpolation (as :func:`torch.quantile`).

    Unlike :func:`torch.quantile`, it has no input-size limit.

    Examples:
        >>> per_image_quantile(torch.arange(5.0).expand(2, 5), 0.5)
        tensor([2., 2.])
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}.")
    size = values.shape[-1]
    position = quantile * (size - 1)
    lower = int(position)
    upper = min(lower + 1, size - 1)
    fraction = position - lower
    # The two order statistics around the position, from the smallest top-k
    # (a high quantile only needs the few largest values, not a full sort).
    if size - lower <= lower + 1:
        largest = values.topk(size - lower, dim=-1).values  # descending
        low_value, high_value = largest[..., size - 1 - lower], largest[..., size - 1 - upper]
    else:
        smallest = values.topk(upper + 1, dim=-1, largest=False).values  # ascending
        low_value, high_value = smallest[..., lower], smallest[..., upper]
    return low_value + fraction * (high_value - low_value)


def segment_mean(values: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Replaces every pixel by the mean of ``values`` over its segment, image by image.

    Args:
        values: ``(N, P)`` float, one row per image.
        segments: ``(N, P)`` non-negative integer ids, meaningful within a row only.
            Id ``0`` (unassigned) is a segment like any other.

    Returns:
        ``(N, P)``: the mean of ``values`` over the pixels of the same image with the
        same id. Vectorised: one scatter-add over the whole batch.

    Examples:
        >>> segment_mean(torch.tensor([[1.0, 3.0, 5.0]]), torch.tensor([[0, 0, 2]]))
        tensor([[2., 2., 5.]])
    """
    num_images, num_pixels = values.shape
    segments = segments.long()
    num_ids = int(segments.max()) + 1 if segments.numel() else 1
    if num_images * num_ids <= 4 * num_images * num_pixels:
        # Direct table of (image, id) slots: no sort needed.
        offsets = torch.arange(num_images, device=values.device).unsqueeze(-1) * num_ids
        slots = (segments + offsets).flatten()
        num_slots = num_images * num_ids
    else:
        # Sparse, large ids: compact the (image, id) pairs first.
        pairs = segments + torch.arange(num_images, device=values.device).unsqueeze(-1) * num_ids
        _, slots = torch.unique(pairs.flatten(), return_inverse=True)
        num_slots = int(slots.max()) + 1
    sums = values.new_zeros(num_slots).index_add_(0, slots, values.flatten())
    counts = values.new_zeros(num_slots).index_add_(0, slots, torch.ones_like(values).flatten())
    means = sums / counts.clamp_min(1)
    return means[slots].view(num_images, num_pixels)


_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def finite_magnitude(values: torch.Tensor) -> torch.Tensor:
    """Row-wise finite magnitudes of ``values`` ``(N, P)``: ``|v|``, ``NaN -> 0``,
    ``+-inf ->`` the largest finite magnitude of the row (``0`` when the row has none).

    Examples:
        >>> finite_magnitude(torch.tensor([[-3.0, float("nan"), float("-inf"), 1.0]]))
        tensor([[3., 0., 3., 1.]])
    """
    magnitude = values.abs()
    finite = torch.isfinite(magnitude)
    largest = torch.where(finite, magnitude, 0.0).amax(-1, keepdim=True)
    return torch.where(finite, magnitude, torch.where(magnitude.isnan(), 0.0, largest))


def segment_weights(
    salience: torch.Tensor,
    segments: torch.Tensor | None,
    *,
    alpha: float = 0.9,
    quantile: float = 0.99,
) -> torch.Tensor:
    """PSP's per-pixel loss weights ``W''`` from a salience map and a segmentation (Eq. 2).

    For each image independently:

    1. clip the salience magnitude at its ``quantile`` (99th percentile):
       ``s_i = min(|G_i|, q_{0.99})``;
    2. ``W_i = mean of s_j over the segment of pixel i`` (Eq. 2); the unassigned
       segment (id 0) is one segment like the others. With ``segments=None``
       (the pixel-wise ablation), ``W_i = s_i``;
    3. if the clipped map of an image is zero everywhere, ``W_i = 1``;
    4. ``W'_i = H * W * W_i / sum_j W_j`` (mean 1 over the image);
    5. ``W''_i = alpha * W'_i + (1 - alpha)``.

    The result has mean 1 over every image (sum ``H * W``) and is a constant: it
    carries no gradient.

    Salience that is not a finite magnitude is read by a fixed rule, so that one bad
    pixel never makes weights non-finite or negative: a negative value counts by its
    magnitude (the salience is ``|G|``); ``NaN`` counts as ``0`` (no information);
    ``+inf`` and ``-inf`` count as the largest finite magnitude of the same image (then
    clipped like any value). An image with no finite non-zero value gets uniform
    weights (step 3). Every weight is therefore finite and ``>= 1 - alpha``.

    Args:
        salience: per-pixel salience ``(*batch, H, W)``, ``H, W >= 1`` (magnitudes;
            see the rule above for negative and non-finite values).
        segments: integer segment ids ``(*batch, H, W)`` (any integer dtype, ids
            ``>= 0``, meaningful within one image), or ``None``.
        alpha: interpolation towards uniform weights (PSP: 0.9).
        quantile: clipping quantile of each image (PSP: 0.99).

    Returns:
        ``W''`` of shape ``(*batch, H, W)``, float.

    Examples:
        >>> salience = torch.tensor([[[4.0, 0.0], [2.0, 2.0]]])
        >>> segments = torch.tensor([[[1, 0], [1, 0]]], dtype=torch.int16)
        >>> segment_weights(salience, segments, alpha=1.0, quantile=1.0)
        tensor([[[1.5000, 0.5000],
                 [1.5000, 0.5000]]])
        >>> segment_weights(torch.zeros(1, 2, 2), None)
        tensor([[[1., 1.],
                 [1., 1.]]])
        >>> segment_weights(torch.tensor([[[float("nan"), -2.0], [float("inf"), 1.0]]]), None,
        ...                 alpha=1.0, quantile=1.0)
        tensor([[[0.0000, 1.6000],
                 [1.6000, 0.8000]]])
    """
    if not isinstance(salience, torch.Tensor):
        raise ValueError(f"salience must be a tensor, got {type(salience).__name__}.")
    if salience.ndim < 2 or 0 in salience.shape[-2:]:
        raise ValueError(
            f"salience must have shape (*batch, H, W) with H, W >= 1, got {tuple(salience.shape)}."
        )
    if not (salience.is_floating_point() or salience.dtype in _INTEGER_DTYPES):
        raise ValueError(f"salience must be real numbers, got dtype {salience.dtype}.")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    if segments is not None:
        if segments.shape != salience.shape:
            raise ValueError(
                f"segments must have the salience's shape (*batch, H, W) = {tuple(salience.shape)}; "
                f"got {tuple(segments.shape)}."
            )
        if segments.is_floating_point() or segments.is_complex():
            raise ValueError(f"segments must hold integer ids, got dtype {segments.dtype}.")
        if segments.numel() and bool(segments.min() < 0):
            raise ValueError("segments must hold ids >= 0 (0 = unassigned).")
    shape = salience.shape
    height, width = shape[-2:]
    flat = salience.detach().float().reshape(-1, height * width)
    if flat.numel() == 0:
        return flat.new_ones(shape)
    flat = finite_magnitude(flat)
    flat = torch.minimum(flat, per_image_quantile(flat, quantile).unsqueeze(-1))
    if segments is not None:
        flat = segment_mean(flat, segments.reshape(-1, height * width))
    total = flat.sum(-1, keepdim=True)
    nonzero = total > 0
    normalised = torch.where(
        nonzero, flat * (height * width) / torch.where(nonzero, total, 1.0), 1.0
    )
    return (alpha * normalised + (1.0 - alpha)).reshape(shape)


def weight_statistics(weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Minimum, maximum and normalised entropy of weight maps ``(*batch, H, W)``, for logging.

    The entropy is that of each image's weights seen as a distribution over its
    pixels, divided by ``log(H * W)`` (1 = uniform weights), averaged over images.

    Examples:
        >>> stats = weight_statistics(torch.ones(2, 4, 4))
        >>> [round(float(stats[k]), 4) for k in ("weight_min", "weight_max", "weight_entropy")]
        [1.0, 1.0, 1.0]
    """
    weights = weights.detach()
    flat = weights.reshape(-1, weights.shape[-2] * weights.shape[-1]).float()
    probs = flat / flat.sum(-1, keepdim=True).clamp_min(torch.finfo(flat.dtype).tiny)
    entropy = -(probs * probs.clamp_min(torch.finfo(flat.dtype).tiny).log()).sum(-1)
    num_pixels = flat.shape[-1]
    normaliser = torch.log(torch.tensor(float(num_pixels))) if num_pixels > 1 else torch.tensor(1.0)
    return {
        "weight_min": flat.min(),
        "weight_max": flat.max(),
        "weight_entropy": (entropy / normaliser.to(entropy.device)).mean(),
    }
