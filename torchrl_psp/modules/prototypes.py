"""DreamerPro's modules: learnable prototypes and the two-view image augmentation.

DreamerPro (Deng, Jang and Ahn 2022, §3) learns its representation without a decoder by
clustering: :class:`Prototypes` are the cluster centres ``c_1..c_K`` on the unit sphere
(as in SwAV, Caron et al. 2020), and :func:`random_translate` makes the two augmented
views of every sequence. The losses that use them are in
:mod:`torchrl_psp.objectives.prototype_losses` and
:class:`~torchrl_psp.objectives.DreamerProModelLoss`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Prototypes", "random_translate", "translate"]


class Prototypes(nn.Module):
    """``K`` learnable prototype vectors ``c_k`` of width ``D``, kept on the unit sphere.

    The weight ``C`` ``(K, D)`` starts from a standard normal draw, normalised. Before
    each use the loss calls :meth:`normalize_`, which projects every row back onto the
    unit sphere in place (no gradient flows through the normalisation, as in SwAV and
    DreamerPro); the scores are then cosine similarities.

    Args:
        num_prototypes: ``K`` (DreamerPro: 2,500).
        dim: ``D``, the width of the projected embeddings (DreamerPro: 32).

    Examples:
        >>> prototypes = Prototypes(num_prototypes=4, dim=3)
        >>> torch.allclose(prototypes.weight.norm(dim=-1), torch.ones(4))
        True
        >>> prototypes(torch.tensor([[1.0, 0.0, 0.0]])).shape
        torch.Size([1, 4])
    """

    def __init__(self, num_prototypes: int = 2500, dim: int = 32):
        super().__init__()
        if num_prototypes < 1 or dim < 1:
            raise ValueError(
                f"num_prototypes and dim must be positive; got {num_prototypes} and {dim}."
            )
        self.weight = nn.Parameter(F.normalize(torch.randn(num_prototypes, dim), dim=-1))

    @property
    def num_prototypes(self) -> int:
        """``K``."""
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        """``D``."""
        return self.weight.shape[1]

    @torch.no_grad()
    def normalize_(self) -> None:
        """Projects every prototype onto the unit sphere, in place: ``c_k <- c_k / ||c_k||``.

        Examples:
            >>> prototypes = Prototypes(2, 2)
            >>> _ = prototypes.weight.data.mul_(3.0)
            >>> prototypes.normalize_()
            >>> torch.allclose(prototypes.weight.detach().norm(dim=-1), torch.ones(2))
            True
        """
        self.weight.copy_(F.normalize(self.weight, dim=-1))

    def forward(
        self, embeddings: torch.Tensor, *, frozen: bool | torch.Tensor = False
    ) -> torch.Tensor:
        """Scores ``z^T c_k`` ``(*batch, K)`` of embeddings ``z`` ``(*batch, D)``.

        Args:
            embeddings: the (normalised) embeddings.
            frozen: the prototypes get a zero gradient (DreamerPro freezes them for its
                first updates); a bool tensor selects it on the device, without a host
                synchronisation.

        Raises:
            ValueError: the embeddings' last dimension is not ``D``.
        """
        if embeddings.shape[-1] != self.dim:
            raise ValueError(
                f"Prototypes of width {self.dim} score embeddings of shape (*batch, {self.dim}); "
                f"got {tuple(embeddings.shape)}."
            )
        weight = self.weight
        if isinstance(frozen, torch.Tensor):
            weight = torch.where(frozen, weight.detach(), weight)
        elif frozen:
            weight = weight.detach()
        return embeddings @ weight.to(embeddings.dtype).T


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Images moved by ``shifts`` pixels, bilinear, edges repeated (DreamerPro's augmentation).

    ``output[..., i, j] = input[..., i - dy, j - dx]`` (read bilinearly; outside the image
    the nearest edge pixel is read) for ``shifts[..., :] = (dx, dy)``, which may be
    fractional.

    Args:
        images: float ``(*batch, C, H, W)``.
        shifts: ``(*batch, 2)`` horizontal and vertical shifts in pixels.

    Returns:
        float ``(*batch, C, H, W)``.

    Examples:
        >>> image = torch.arange(4.0).reshape(1, 1, 4)
        >>> translate(image, torch.tensor([1.0, 0.0]))
        tensor([[[0., 0., 1., 2.]]])
        >>> translate(image, torch.tensor([0.5, 0.0]))
        tensor([[[0.0000, 0.5000, 1.5000, 2.5000]]])
    """
    if images.ndim < 3 or shifts.shape != (*images.shape[:-3], 2):
        raise ValueError(
            f"translate reads images (*batch, C, H, W) and shifts (*batch, 2); got images "
            f"{tuple(images.shape)} and shifts {tuple(shifts.shape)}."
        )
    channels, height, width = images.shape[-3:]
    flat = images.reshape(-1, channels, height, width)
    shifts = shifts.reshape(-1, 2).to(flat.dtype)
    # Normalised coordinates span 2 over the image: one pixel is 2 / size.
    theta = torch.zeros(flat.shape[0], 2, 3, dtype=flat.dtype, device=flat.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * shifts[:, 0] / width
    theta[:, 1, 2] = -2.0 * shifts[:, 1] / height
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    moved = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved.reshape(images.shape)


def random_translate(
    images: torch.Tensor,
    max_shift: float = 3.0,
    *,
    same_across_time: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random shifts, uniform in ``[-max_shift, max_shift]`` on each axis, of image sequences.

    DreamerPro's augmentation of each view: a continuous shift read bilinearly
    (:func:`translate`), the same for every frame of a sequence so that the world
    model sees a consistent video.

    Args:
        images: float ``(B, T, C, H, W)``.
        max_shift: largest shift in pixels (DreamerPro: 3).
        same_across_time: one shift per sequence (``True``) or per frame.
        generator: random generator on the images' device.

    Examples:
        >>> images = torch.rand(2, 5, 3, 8, 8)
        >>> moved = random_translate(images, 2.0)
        >>> moved.shape
        torch.Size([2, 5, 3, 8, 8])
        >>> torch.equal(random_translate(images, 0.0), images)
        True
    """
    if images.ndim != 5:
        raise ValueError(
            f"random_translate reads image sequences (B, T, C, H, W); got {tuple(images.shape)}."
        )
    if max_shift < 0:
        raise ValueError(f"max_shift must be non-negative, got {max_shift}.")
    batch, time = images.shape[:2]
    draws = (batch, 1 if same_across_time else time, 2)
    unit = torch.rand(draws, generator=generator, device=images.device, dtype=images.dtype)
    shifts = ((2.0 * unit - 1.0) * max_shift).expand(batch, time, 2)
    return translate(images, shifts)
