"""Policy-Shaped Prediction world-model loss on TorchRL's DreamerV3 (PSP §2, Algorithm 1)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey

from torchrl_psp._torchrl_private import clear_loss_weakrefs
from torchrl_psp.modules.adversarial_head import AdversarialActionHead
from torchrl_psp.modules.saliency import PolicySaliency
from torchrl_psp.objectives.reconstruction import ImageReconstructionModelLoss
from torchrl_psp.objectives.weights import segment_weights, weight_statistics

__all__ = ["PSPModelLoss", "adversarial_action_loss"]


def adversarial_action_loss(
    prediction: torch.Tensor, action: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PSP's ``L_adv = (a_hat_{t-1} - a_{t-1})^2`` (Eq. 4), averaged over valid steps.

    Args:
        prediction: the head's ``a_hat`` ``(*batch, A)``.
        action: the true previous action ``(*batch, A)``.
        valid: bool ``(*batch)``, steps that have a previous action.

    Returns:
        The loss (squared error summed over action dimensions, averaged over valid
        steps; 0 without any valid step) and detached metrics: ``adv_action_mse``
        (per dimension) and ``adv_action_r2`` (``1 - mse / variance`` of the action).

    Examples:
        >>> loss, metrics = adversarial_action_loss(
        ...     torch.tensor([[1.0, 0.0], [5.0, 5.0]]), torch.zeros(2, 2), torch.tensor([True, False]))
        >>> loss.item(), metrics["adv_action_mse"].item()
        (1.0, 0.5)
    """
    weight = valid.to(prediction.dtype)
    count = weight.sum().clamp_min(1.0)
    squared = (prediction - action.to(prediction.dtype)).square()
    loss = (squared.sum(-1) * weight).sum() / count
    with torch.no_grad():
        mean_action = (action * weight.unsqueeze(-1)).sum(tuple(range(weight.ndim))) / count
        variance = ((action - mean_action).square().sum(-1) * weight).sum() / count
        mse = loss.detach() / action.shape[-1]
        r2 = 1.0 - loss.detach() / variance.clamp_min(1e-8)
    return loss, {"adv_action_mse": mse, "adv_action_r2": r2}


class PSPModelLoss(ImageReconstructionModelLoss):
    """DreamerV3 world-model loss with PSP's saliency weighting and adversarial head.

    * Image term (Algorithm 1, line 9): ``sum_{c,i} W''_i (x_{c,i} - x_hat_{c,i})^2``
      per image, averaged over batch and time, with ``W''`` from
      :func:`~torchrl_psp.objectives.segment_weights` applied to the policy saliency
      (:class:`~torchrl_psp.modules.PolicySaliency`) of each image. The weights are
      constants. KL, reward and continuation terms are DreamerV3's, unchanged.
    * ``loss_model_adv`` (Eqs. 3-4): an
      :class:`~torchrl_psp.modules.AdversarialActionHead` on the encoder output
      ``("next", encoded_latents)`` predicts the action that preceded the image,
      which in TorchRL's layout is the root ``"action"`` of the same step. The
      head's gradient-reversal layer gives the encoder ``-epsilon * grad L_adv`` in
      the same backward pass. Steps with ``is_init`` are left out: where the RSSM
      resets (an episode start after a sequence's first row) it zeroes its action
      input, so the encoder is the only source of that action. On a sequence's first
      row the agent's rollout does not reset
      (:class:`~torchrl_psp.modules.EpisodeStartRollout`); leaving that step out too
      is merely conservative.

    The saliency shares the world model's encoder forward pass (see
    :meth:`~torchrl_psp.modules.PolicySaliency.run_with_salience`): one
    :func:`torch.autograd.grad` call from the summed action means down to the
    encoder's first convolution, then that convolution's input gradient, give every
    image its gradient (the RSSM beliefs are detached). The world model's own
    backward pass, and the gradients of its parameters, are unchanged. Where the pass
    cannot be shared, the saliency runs the encoder again (same weights) and warns once.

    Args:
        world_model: the world model (see :func:`~torchrl_psp.modules.make_dreamer_v3`).
        saliency: the policy (or value) saliency; ``None`` turns saliency weighting
            off (then weights are read from ``("next", loss_weights)`` when the
            sample has them, else the plain DreamerV3 image term is used).
        adversarial_head: the adversarial head; ``None`` turns it off.
        use_segments: aggregate salience within ``("next", segments)`` (Eq. 2);
            ``False`` is the pixel-wise ablation.
        alpha: interpolation towards uniform weights.
        quantile: per-image clipping quantile of the salience.
        lambda_adv: weight of ``loss_model_adv`` (the head's loss).
        share_encoder_pass: compute the saliency from the world model's encoder
            forward pass (default; needs a ``DreamerV3ImageEncoder`` and gradients
            enabled) instead of a separate encoder pass; both give the same weights.
        **kwargs: arguments of :class:`~torchrl.objectives.DreamerV3ModelLoss`.

    Output entries: DreamerV3's ``loss_model_*``, ``loss_model_adv`` (with a head),
    and the detached metrics ``model_reco_unweighted`` (DreamerV3's image term),
    ``weight_min``, ``weight_max``, ``weight_entropy`` (normalised, 1 = uniform),
    ``adv_action_mse``, ``adv_action_r2``. The returned world-model TensorDict holds
    the weights under ``("next", loss_weights)``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import AdversarialActionHead, PolicySaliency, make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> loss = PSPModelLoss(
        ...     agent.world_model,
        ...     saliency=PolicySaliency(agent.encoder, agent.posterior, agent.actor),
        ...     adversarial_head=AdversarialActionHead(agent.encoded_dim, 2, depth=1, num_cells=8),
        ...     num_reward_bins=agent.config.num_reward_bins,
        ... )
        >>> B, T, cfg = 2, 3, agent.config
        >>> sample = TensorDict({
        ...     "state": torch.zeros(B, T, cfg.state_dim),
        ...     "belief": torch.zeros(B, T, cfg.rnn_hidden_dim),
        ...     "action": torch.rand(B, T, 2) * 2 - 1,
        ...     "is_init": torch.zeros(B, T, 1, dtype=torch.bool),
        ...     "next": {
        ...         "pixels": torch.randint(0, 256, (B, T, 3, 16, 16), dtype=torch.uint8),
        ...         "segments": torch.randint(0, 3, (B, T, 16, 16), dtype=torch.int16),
        ...         "reward": torch.randn(B, T, 1),
        ...     },
        ... }, [B, T])
        >>> losses, world_model_output = loss(sample)
        >>> sorted(key for key in losses.keys() if key.startswith("loss_"))
        ['loss_model_adv', 'loss_model_kl', 'loss_model_reco', 'loss_model_reward']
        >>> weights = world_model_output["next", "loss_weights"]
        >>> torch.allclose(weights.mean((-2, -1)), torch.ones(B, T))
        True
    """

    @dataclass
    class _AcceptedKeys(ImageReconstructionModelLoss._AcceptedKeys):
        """Configurable keys (those of ``DreamerV3ModelLoss`` and the following).

        Attributes:
            segments: segment-id image, read under ``"next"``. Default ``"segments"``.
            loss_weights: per-pixel weights, written (and, without saliency, read)
                under ``"next"``. Default ``"loss_weights"``.
            encoded: encoder output, under ``"next"``. Default ``"encoded_latents"``.
            state: posterior sample, under ``"next"``. Default ``"state"``.
            belief: RSSM belief, under ``"next"``. Default ``"belief"``.
            action: action preceding the ``"next"`` image (root). Default ``"action"``.
            is_init: reset marker (root). Default ``"is_init"``.
        """

        segments: NestedKey = "segments"
        loss_weights: NestedKey = "loss_weights"
        encoded: NestedKey = "encoded_latents"
        state: NestedKey = "state"
        belief: NestedKey = "belief"
        action: NestedKey = "action"
        is_init: NestedKey = "is_init"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys

    def __init__(
        self,
        world_model: TensorDictModule,
        *,
        saliency: PolicySaliency | None = None,
        adversarial_head: AdversarialActionHead | None = None,
        use_segments: bool = True,
        alpha: float = 0.9,
        quantile: float = 0.99,
        lambda_adv: float = 1.0,
        share_encoder_pass: bool = True,
        **kwargs,
    ):
        super().__init__(world_model, **kwargs)
        self.saliency = saliency
        self.adversarial_head = adversarial_head
        self.use_segments = use_segments
        self.alpha = alpha
        self.quantile = quantile
        self.lambda_adv = lambda_adv
        self.share_encoder_pass = share_encoder_pass

    @property
    def extra_in_keys(self) -> list[NestedKey]:
        keys = [self.tensor_keys.is_init]
        if self.saliency is None:
            keys.append(self._next(self.tensor_keys.loss_weights))
        elif self.use_segments:
            keys.append(self._next(self.tensor_keys.segments))
        if self.adversarial_head is not None:
            keys.append(self.tensor_keys.action)
        return keys

    def forward(self, tensordict: TensorDictBase) -> tuple[TensorDict, TensorDictBase]:
        images = self._images(tensordict)
        world_model = partial(super().forward, tensordict)
        if self.saliency is None:
            losses, output = world_model()
            weights = self._given_weights(tensordict, images)
        else:
            (losses, output), salience = self.saliency.run_with_salience(
                images,
                world_model,
                self._posterior_inputs,
                share_encoder_pass=self.share_encoder_pass,
            )
            weights = self._salience_weights(tensordict, images, salience)
        losses.set("model_reco_unweighted", losses.get("loss_model_reco").detach())

        if weights is not None:  # otherwise DreamerV3's own image term stays
            target, prediction = self._target_and_prediction(images, output)
            error = self._pixel_error(target, prediction) * weights.unsqueeze(-3)
            reconstruction = self._reduce(error, tensordict.ndim)
            losses.set("loss_model_reco", self.lambda_reco * reconstruction)
            output.set(self._next(self.tensor_keys.loss_weights), weights)
            losses.update(weight_statistics(weights))

        if self.adversarial_head is not None:
            adv_loss, adv_metrics = self._adversarial_loss(tensordict, output)
            losses.set("loss_model_adv", self.lambda_adv * adv_loss.unsqueeze(-1))
            losses.update(adv_metrics)
        clear_loss_weakrefs(self, tensordict, losses)
        return losses, output

    def _posterior_inputs(
        self, result: tuple[TensorDict, TensorDictBase]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder output, belief and posterior sample of each image, from the world model."""
        output = result[1]
        keys = self.tensor_keys
        return tuple(output.get(self._next(key)) for key in (keys.encoded, keys.belief, keys.state))

    def _given_weights(
        self, tensordict: TensorDictBase, images: torch.Tensor
    ) -> torch.Tensor | None:
        """The sample's ``("next", loss_weights)`` (checked, detached), or ``None``."""
        weights_key = self._next(self.tensor_keys.loss_weights)
        weights = tensordict.get(weights_key, None)
        if weights is not None:
            self._check_map(weights, weights_key, images)
            weights = weights.detach().float()
        return weights

    def _salience_weights(
        self, tensordict: TensorDictBase, images: torch.Tensor, salience: torch.Tensor
    ) -> torch.Tensor:
        """PSP's weights ``W''`` from the salience, aggregated within segments if asked."""
        segments = None
        if self.use_segments:
            segments_key = self._next(self.tensor_keys.segments)
            segments = self._get(tensordict, segments_key, "segment ids for the aggregation")
            self._check_map(segments, segments_key, images)
        return segment_weights(salience, segments, alpha=self.alpha, quantile=self.quantile)

    def _adversarial_loss(
        self, tensordict: TensorDictBase, output: TensorDictBase
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        encoded = output.get(self._next(self.tensor_keys.encoded))
        action = self._get(tensordict, self.tensor_keys.action, "the action before each image")
        if action.shape[:-1] != tensordict.batch_size:
            raise ValueError(
                f"Entry {self.tensor_keys.action!r} must have shape (*batch, A) with batch "
                f"{tuple(tensordict.batch_size)}; got {tuple(action.shape)}."
            )
        is_init = tensordict.get(self.tensor_keys.is_init, None)
        if is_init is None:
            valid = torch.ones(tensordict.batch_size, dtype=torch.bool, device=action.device)
        else:
            valid = ~is_init.reshape(tensordict.batch_size).bool()
        prediction = self.adversarial_head(encoded)
        return adversarial_action_loss(prediction, action.float(), valid)
