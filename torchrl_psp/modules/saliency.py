"""Policy saliency (PSP Eq. 1): gradient of the summed action mean w.r.t. each image."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn

from torchrl_psp._torchrl_private import posterior_logits, straight_through, unimix_probs
from torchrl_psp.modules.encoder_vjp import (
    EncoderPassCapture,
    capture_encoder_pass,
    encoder_input_gradient,
    supports_encoder_capture,
)

__all__ = ["PolicySaliency", "image_to_unit_float"]

Result = TypeVar("Result")


def image_to_unit_float(pixels: torch.Tensor) -> torch.Tensor:
    """Returns images on the ``[0, 1]`` scale: ``uint8`` is divided by 255, floats are kept.

    Examples:
        >>> image_to_unit_float(torch.tensor([0, 51, 255], dtype=torch.uint8))
        tensor([0.0000, 0.2000, 1.0000])
    """
    if pixels.is_floating_point():
        return pixels
    return pixels.float() / 255.0


class PolicySaliency(nn.Module):
    r"""Per-image gradient of the policy's summed action mean w.r.t. the image (PSP Eq. 1).

    For every image ``x_t`` of a batch, with the RSSM belief ``h_t`` treated as a
    constant (SPEC §2):

    .. math::

        e_t = \mathrm{enc}(x_t), \quad
        z_t = \mathrm{ST}(q(z_t \mid h_t, e_t)), \quad
        a = \sum_j \mathbb{E}[\pi(h_t, z_t)]_j, \quad
        G_t = \partial a / \partial x_t .

    ``z_t`` takes the value of the world model's posterior sample when one is given
    (the posterior mode otherwise) and its straight-through gradient (the gradient of
    the posterior probabilities, as in the RSSM). Because ``h_t`` is detached, each
    image only reaches its own output, so the gradient of the sum over the whole batch
    gives every image its own saliency in one backward pass. The gradient is computed
    with :func:`torch.autograd.grad` w.r.t. the images only: parameters' ``.grad`` are
    left untouched. Images are on the ``[0, 1]`` scale (``uint8`` input is divided by
    255), the scale the encoder and decoder use.

    :meth:`run_with_salience` runs the world model and returns the salience of the
    images it encodes, reusing the world model's encoder pass where it can (the one
    method a loss calls). Two ways to compute it give the same gradient:

    * :meth:`gradient` / :meth:`forward` run the encoder on the images;
    * :meth:`capture_encoder_pass` records the encoder's activations while the world
      model encodes the images, and :meth:`gradient_from_capture` reuses that forward
      pass: autograd runs from the actor down to the encoder output, and the encoder's
      input gradient is computed from the recorded activations by
      :func:`~torchrl_psp.modules.encoder_input_gradient` (no second forward pass;
      the world model's own backward pass is unchanged, no gradient w.r.t. the images
      is computed there). This needs a :class:`~torchrl.modules.DreamerV3ImageEncoder`.

    Args:
        encoder: image encoder, ``(*batch, C, H, W) -> (*batch, E)``.
        posterior: the world model's :class:`~torchrl.modules.RSSMPosteriorV3`.
        head: the actor (a probabilistic TensorDict module: its distribution
            parameters are computed, no action is sampled) or, for the value-gradient
            (VaGraM-style) ablation, the critic.
        head_output_key: output of ``head`` whose sum is differentiated: ``"loc"``
            (the mean of DreamerV3's bounded-normal actor) or ``"state_value"``.
        state_key: input key of ``head`` for the stochastic state.
        belief_key: input key of ``head`` for the belief.

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> from torchrl.modules import DreamerV3ImageEncoder, RSSMPosteriorV3
        >>> encoder = DreamerV3ImageEncoder(depth=2, mults=(1, 2))
        >>> posterior = RSSMPosteriorV3(
        ...     hidden_dim=8, num_categoricals=2, num_classes=3, rnn_hidden_dim=4,
        ...     obs_embed_dim=encoder.output_features((3, 8, 8)),
        ... )
        >>> actor = TensorDictModule(
        ...     lambda state, belief: torch.cat([state, belief], -1).sum(-1, keepdim=True),
        ...     in_keys=["state", "belief"], out_keys=["loc"],
        ... )
        >>> saliency = PolicySaliency(encoder, posterior, actor)
        >>> pixels = torch.randint(0, 256, (2, 5, 3, 8, 8), dtype=torch.uint8)
        >>> belief = torch.randn(2, 5, 4)
        >>> salience = saliency(pixels, belief)
        >>> salience.shape
        torch.Size([2, 5, 8, 8])
        >>> with saliency.capture_encoder_pass() as capture:
        ...     encoded = encoder(pixels)  # e.g. inside the world model
        >>> shared = saliency.gradient_from_capture(capture, encoded, pixels.shape, belief)
        >>> torch.allclose(shared.abs().sum(-3), salience, atol=1e-6)
        True
        >>> def world_model():  # e.g. the world-model loss's forward pass
        ...     return {"encoded": encoder(pixels.float() / 255), "belief": belief}
        >>> output, from_pass = saliency.run_with_salience(
        ...     pixels, world_model, lambda output: (output["encoded"], output["belief"], None)
        ... )
        >>> torch.allclose(from_pass, salience, atol=1e-6), output["encoded"].requires_grad
        (True, True)
    """

    def __init__(
        self,
        encoder: nn.Module,
        posterior: nn.Module,
        head: TensorDictModuleBase,
        *,
        head_output_key: NestedKey = "loc",
        state_key: NestedKey = "state",
        belief_key: NestedKey = "belief",
    ):
        super().__init__()
        self.encoder = encoder
        self.posterior = posterior
        self.head = head
        self.head_output_key = head_output_key
        self.state_key = state_key
        self.belief_key = belief_key
        self._warned_fallback = False

    @property
    def can_capture(self) -> bool:
        """Whether :meth:`capture_encoder_pass` applies to this encoder."""
        return supports_encoder_capture(self.encoder)

    @contextmanager
    def capture_encoder_pass(self) -> Iterator[EncoderPassCapture]:
        """Records the encoder's next forward pass (see :func:`~torchrl_psp.modules.capture_encoder_pass`).

        Yields:
            The :class:`~torchrl_psp.modules.EncoderPassCapture`, filled when the
            encoder runs inside the ``with`` block (only its first call is recorded).
        """
        with capture_encoder_pass(self.encoder) as capture:
            yield capture

    def _head_target(
        self, encoded: torch.Tensor, belief: torch.Tensor, state: torch.Tensor | None
    ) -> torch.Tensor:
        """``sum`` of the head output over the batch, from encodings and detached beliefs."""
        batch_shape = belief.shape[:-1]
        if encoded.shape[:-1] != batch_shape:
            raise ValueError(
                f"belief must have shape (*batch, D) with the batch {tuple(encoded.shape[:-1])} "
                f"of the images; got {tuple(belief.shape)}."
            )
        belief = belief.detach()
        logits = posterior_logits(self.posterior, belief, encoded)
        probs = unimix_probs(logits, getattr(self.posterior, "unimix", 0.0))
        latent = straight_through(probs, state).reshape(*batch_shape, -1)
        head_input = TensorDict(
            {self.state_key: latent, self.belief_key: belief}, batch_size=batch_shape
        )
        get_params = getattr(self.head, "get_dist_params", None)
        output = get_params(head_input) if get_params is not None else self.head(head_input)
        return output.get(self.head_output_key).sum()

    def gradient(
        self, pixels: torch.Tensor, belief: torch.Tensor, state: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns ``G = d(sum_j a_j) / d x``, one gradient image per input image.

        Args:
            pixels: images ``(*batch, C, H, W)``, ``uint8`` or float in ``[0, 1]``.
            belief: RSSM belief ``h_t`` of each image, ``(*batch, D)``; detached here.
            state: the world model's posterior sample for each image,
                ``(*batch, categoricals * classes)``; its value is used with the
                straight-through gradient. ``None``: the posterior mode.

        Returns:
            ``G`` with the shape of ``pixels`` (float32).
        """
        if pixels.ndim < 4:
            raise ValueError(
                f"PolicySaliency expects images of shape (*batch, C, H, W), got {tuple(pixels.shape)}."
            )
        with torch.enable_grad():
            images = image_to_unit_float(pixels.detach()).requires_grad_(True)
            target = self._head_target(self.encoder(images), belief, state)
            (grad,) = torch.autograd.grad(target, images)
        return grad

    def gradient_from_capture(
        self,
        capture: EncoderPassCapture,
        encoded: torch.Tensor,
        image_shape: torch.Size | tuple[int, ...],
        belief: torch.Tensor,
        state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """As :meth:`gradient`, reusing a recorded encoder pass (see :meth:`capture_encoder_pass`).

        The graph of ``encoded`` is kept for the world model's backward pass.

        Args:
            capture: the recording of the encoder pass that computed ``encoded``.
            encoded: the encoder output of that pass, ``(*batch, E)``, with its graph.
            image_shape: shape of the encoded images, ``(*batch, C, H, W)``.
            belief: as :meth:`gradient`.
            state: as :meth:`gradient`.
        """
        if not capture.complete or not encoded.requires_grad:
            raise ValueError(
                "The capture holds no differentiable encoder pass: run the encoder inside "
                "capture_encoder_pass() with gradients enabled."
            )
        with torch.enable_grad():
            target = self._head_target(encoded, belief, state)
            # Only the posterior and head nodes run (and are freed): the graph below
            # ``encoded`` stays intact for the world model.
            (encoded_grad,) = torch.autograd.grad(target, encoded)
        grad = encoder_input_gradient(capture, encoded_grad)
        return grad.reshape(image_shape)

    def forward(
        self, pixels: torch.Tensor, belief: torch.Tensor, state: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the per-pixel salience ``sum_c |G_c|``, shape ``(*batch, H, W)``.

        Arguments as :meth:`gradient`.
        """
        return self.gradient(pixels, belief, state=state).abs().sum(-3)

    def run_with_salience(
        self,
        images: torch.Tensor,
        world_model: Callable[[], Result],
        latents: Callable[[Result], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]],
        *,
        share_encoder_pass: bool = True,
    ) -> tuple[Result, torch.Tensor]:
        """Runs the world model and returns its result with the salience of ``images``.

        With ``share_encoder_pass`` the encoder's activations are recorded while
        ``world_model()`` encodes the images, and the salience is computed from them
        (:meth:`gradient_from_capture`, no second encoder pass). Otherwise, and where the
        shared pass cannot be used (an encoder other than a DreamerV3 image encoder,
        gradients disabled, or a world model that did not run the encoder with gradients),
        the encoder runs again on the images (:meth:`forward`); the salience is the same.
        The first fallback of this instance is warned about, with its reason.

        Args:
            images: the images the world model encodes, ``(*batch, C, H, W)``.
            world_model: runs the world model's forward pass, e.g.
                ``functools.partial(model_loss.forward, sample)``.
            latents: reads from ``world_model()``'s result the encoder output of the
                images ``(*batch, E)`` (with its graph), their RSSM beliefs ``(*batch, D)``
                and the posterior samples ``(*batch, S)`` (or ``None``: the mode).
            share_encoder_pass: reuse the world model's encoder pass when it can be.

        Returns:
            ``world_model()``'s result and the salience ``sum_c |G_c|``, ``(*batch, H, W)``.

        The class example runs it.
        """
        reason = self._unshared_reason() if share_encoder_pass else None
        if share_encoder_pass and reason is None:
            with self.capture_encoder_pass() as capture:
                result = world_model()
            encoded, belief, state = latents(result)
            if capture.complete and encoded.requires_grad:
                gradient = self.gradient_from_capture(
                    capture, encoded, images.shape, belief, state=state
                )
                return result, gradient.abs().sum(-3)
            reason = "the world model did not run the encoder, with gradients, inside the call"
        else:
            result = world_model()
            _, belief, state = latents(result)
        if reason is not None:
            self._warn_fallback(reason)
        return result, self(images, belief, state=state)

    def _unshared_reason(self) -> str | None:
        """Why the world model's encoder pass cannot be shared before it runs, or ``None``."""
        if not self.can_capture:
            return (
                f"the encoder ({type(self.encoder).__name__}) is not a DreamerV3ImageEncoder "
                "of convolution, channel RMS norm and SiLU stages"
            )
        if not torch.is_grad_enabled():
            return "gradients are disabled (torch.no_grad or inference mode)"
        return None

    def _warn_fallback(self, reason: str) -> None:
        if self._warned_fallback:
            return
        self._warned_fallback = True
        warnings.warn(
            f"PolicySaliency computes the salience with a separate encoder pass: {reason}. "
            "The salience is the same; the encoder runs twice (warned once per instance).",
            UserWarning,
            stacklevel=3,
        )
