"""Shared base of the losses that replace DreamerV3's image reconstruction term."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey, unravel_key
from torchrl.objectives import DreamerV3ModelLoss
from torchrl.objectives.dreamer_v3 import symlog

from torchrl_psp.modules.saliency import image_to_unit_float

__all__ = ["ImageReconstructionModelLoss", "check_chw_image", "check_image_scale"]


def check_chw_image(pixels: torch.Tensor, key: NestedKey, channels: int | None = None) -> None:
    """Checks that ``pixels`` is a ``(*batch, C, H, W)`` image batch (``uint8`` or float).

    Raises:
        ValueError: naming ``key``, the shape found and the one expected.

    Examples:
        >>> check_chw_image(torch.zeros(2, 3, 8, 8), "pixels", channels=3)
        >>> check_chw_image(torch.zeros(2, 8, 8, 3), "pixels", channels=3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Entry 'pixels' must be an image batch of shape (*batch, 3, H, W) ...
    """
    if not isinstance(pixels, torch.Tensor):
        raise ValueError(f"Entry {key!r} must be a tensor, got {type(pixels).__name__}.")
    expected = "C" if channels is None else str(channels)
    if (
        pixels.ndim < 4
        or (channels is not None and pixels.shape[-3] != channels)
        or not (pixels.dtype == torch.uint8 or pixels.is_floating_point())
    ):
        raise ValueError(
            f"Entry {key!r} must be an image batch of shape (*batch, {expected}, H, W) "
            f"(channels first, uint8 or float in [0, 1], as the world model reads it); "
            f"got dtype={pixels.dtype} and shape={tuple(pixels.shape)}."
        )


def check_image_scale(pixels: torch.Tensor, key: NestedKey) -> None:
    """Checks that images are on a scale the world model reads: ``uint8`` or float in ``[0, 1]``.

    Float images on a 0-255 scale (or with negative values) would make the
    reconstruction loss about 65,000 times too large without any error. Non-finite
    values (``NaN``, ``inf``) are not a scale and pass this check: the learner's
    stepper (:class:`~torchrl_psp.objectives.FiniteUpdateStepper`) skips such an update. Reading the range of
    a float batch synchronises with the device; ``uint8`` images need no check. Skipped
    inside :func:`torch.compile`.

    Raises:
        ValueError: naming ``key``, the range found and what is expected.

    Examples:
        >>> check_image_scale(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), "pixels")
        >>> check_image_scale(torch.full((1, 3, 2, 2), 255.0), "pixels")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Entry 'pixels' holds float images in [255, 255]; ...
    """
    if not pixels.is_floating_point() or pixels.numel() == 0 or torch.compiler.is_compiling():
        return
    # Non-finite values are the stepper's business, not a scale error.
    low, high = torch.aminmax(torch.nan_to_num(pixels.detach(), nan=0.0, posinf=0.0, neginf=0.0))
    if bool(low < 0) or bool(high > 1):
        raise ValueError(
            f"Entry {key!r} holds float images in [{float(low):g}, {float(high):g}]; the world "
            "model reads uint8 images (0-255) or float images in [0, 1]: pass uint8, or divide "
            "0-255 floats by 255."
        )


class ImageReconstructionModelLoss(DreamerV3ModelLoss):
    """A :class:`~torchrl.objectives.DreamerV3ModelLoss` whose image term a subclass computes.

    The parent computes the KL, reward and continuation terms unchanged; the subclass
    replaces ``loss_model_reco`` using the world-model output TensorDict (returned with
    its graph). Images are compared on the ``[0, 1]`` scale of the decoder
    (``reco_symlog=False`` is the default here; with ``True``, symlog is applied to
    the ``[0, 1]`` target and the prediction alike). The per-element error is summed
    over channels and pixels and averaged over batch and time, as the parent does
    (``global_average=True``: averaged over everything).

    Subclasses list the entries they read from a sample (beyond the world model's
    inputs) in :attr:`extra_in_keys`, so that
    :class:`~torchrl_psp.objectives.DreamerV3VariantLoss` passes them to the stepper.

    See :class:`~torchrl_psp.objectives.PSPModelLoss` and
    :class:`~torchrl_psp.objectives.SDModelLoss` for the two subclasses and their
    examples.

    Args:
        world_model: the world model (see :func:`~torchrl_psp.modules.make_dreamer_v3`).
        image_channels: channels of the images (checked, to catch channels-last input).
        **kwargs: arguments of :class:`~torchrl.objectives.DreamerV3ModelLoss`.
            ``detach_output`` is always ``False`` (the graph of the world-model output
            is needed, as by the replay-value term of ``DreamerV3Loss``).
    """

    def __init__(
        self,
        world_model: TensorDictModule,
        *,
        image_channels: int = 3,
        reco_symlog: bool = False,
        **kwargs,
    ):
        if kwargs.pop("detach_output", False):
            raise ValueError(
                f"{type(self).__name__} needs the world-model output with its graph: "
                "detach_output must be False."
            )
        if not isinstance(reco_symlog, bool):
            raise ValueError(
                f"{type(self).__name__} has one image head: reco_symlog must be a bool."
            )
        super().__init__(world_model, reco_symlog=reco_symlog, detach_output=False, **kwargs)
        self.image_channels = image_channels

    @property
    def image_key(self) -> NestedKey:
        """The image entry, ``("next", pixels)``."""
        pixels = self.tensor_keys.pixels
        if isinstance(pixels, list):
            raise ValueError(f"{type(self).__name__} supports one image key, got {pixels}.")
        return unravel_key(("next", pixels))

    @property
    def extra_in_keys(self) -> list[NestedKey]:
        """Sample entries this loss reads beyond the world model's inputs."""
        return []

    def _images(self, tensordict: TensorDictBase) -> torch.Tensor:
        """The checked image entry of ``tensordict``."""
        images = self._get(tensordict, self.image_key, "images")
        check_chw_image(images, self.image_key, channels=self.image_channels)
        check_image_scale(images, self.image_key)
        return images

    def _next(self, key: NestedKey) -> NestedKey:
        return unravel_key(("next", key))

    def _get(self, tensordict: TensorDictBase, key: NestedKey, what: str) -> torch.Tensor:
        value = tensordict.get(key, None)
        if value is None:
            raise ValueError(
                f"{type(self).__name__} needs the entry {key!r} ({what}) in its input."
            )
        return value

    def _check_map(self, value: torch.Tensor, key: NestedKey, reference: torch.Tensor) -> None:
        expected = (*reference.shape[:-3], *reference.shape[-2:])
        if tuple(value.shape) != expected:
            raise ValueError(
                f"Entry {key!r} must have shape (*batch, H, W) = {expected} to match the "
                f"images; got {tuple(value.shape)}."
            )

    def _target_and_prediction(
        self, images: torch.Tensor, world_model_output: TensorDictBase
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[0, 1]``-scale target (no gradient) and the decoder's prediction (float)."""
        target = image_to_unit_float(images.detach())
        prediction = world_model_output.get(self._next(self.tensor_keys.reco_pixels)).float()
        if prediction.shape != target.shape:
            raise ValueError(
                f"The reconstruction {self.tensor_keys.reco_pixels!r} has shape "
                f"{tuple(prediction.shape)}, the images {tuple(target.shape)}."
            )
        return target, prediction

    def _pixel_error(self, target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """Per-element reconstruction error ``(*batch, C, H, W)`` (``l2`` or ``l1``)."""
        if self.reco_symlog:
            target, prediction = symlog(target), symlog(prediction)
        error = target - prediction
        return error.square() if self.reco_loss == "l2" else error.abs()

    def _reduce(self, error: torch.Tensor, batch_dims: int) -> torch.Tensor:
        """Sums over image elements, averages over batch dims; shape ``(1,)`` like the parent's."""
        if not self.global_average:
            error = error.reshape(*error.shape[:batch_dims], -1).sum(-1)
        return error.mean().unsqueeze(-1)
