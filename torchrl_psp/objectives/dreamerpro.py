"""DreamerPro's reconstruction-free world-model loss on TorchRL's DreamerV3 (Deng et al. 2022, §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams, from_module
from tensordict.nn import TensorDictModule, TensorDictSequential
from tensordict.utils import NestedKey, unravel_key
from torch import nn
from torch.nn import functional as F
from torchrl.objectives import (
    DreamerV3ModelLoss,
    categorical_kl_balanced,
    categorical_kl_terms,
    two_hot_cross_entropy,
)
from torchrl.objectives.dreamer_v3 import symlog

from torchrl_psp._torchrl_private import clear_loss_weakrefs
from torchrl_psp.modules.dreamer import DreamerV3Agent
from torchrl_psp.modules.prototypes import Prototypes, random_translate
from torchrl_psp.modules.saliency import image_to_unit_float
from torchrl_psp.objectives.prototype_losses import (
    projection_norm_loss,
    prototype_log_probs,
    sinkhorn_knopp,
    swapped_prediction_loss,
    temporal_prototype_loss,
)
from torchrl_psp.objectives.reconstruction import check_chw_image, check_image_scale

__all__ = ["DreamerProModelLoss", "dreamerpro_components"]


class DreamerProModelLoss(DreamerV3ModelLoss):
    """DreamerV3 world-model loss with DreamerPro's prototypes in place of reconstruction.

    Every sequence is seen twice (DP1): two random translations of up to ``max_shift``
    pixels (:func:`~torchrl_psp.modules.random_translate`, one shift per sequence) are
    stacked into a ``(2B, T)`` batch and rolled out by the world model in one pass. Then:

    * ``loss_model_swav`` (DP4): each view's projected, normalised image embedding
      ``z_t = norm(W_o e_t)`` predicts, through the prototypes
      (:class:`~torchrl_psp.modules.Prototypes`, DP2), the :func:`sinkhorn_knopp`
      assignment (DP3) of the *other* view, computed by a momentum copy of encoder and
      projection (an exponential moving average with rate ``ema_fraction``, updated at
      every training forward pass);
    * ``loss_model_temporal`` (DP5): the projected, normalised RSSM state
      ``y_t = norm(W_s [z_t, h_t])`` predicts the assignment of its own view's image;
    * ``loss_model_norm`` (DP6): the projections' norms are kept near 1 (released code);
    * DreamerV3's KL terms, reward and continuation losses (TorchRL's
      :func:`~torchrl.objectives.categorical_kl_terms` and two-hot cross-entropy, the
      settings of :class:`~torchrl.objectives.DreamerV3ModelLoss`), on both views.

    There is no decoder and no ``loss_model_reco``. The first ``warm_up`` steps of each
    sequence are left out of the prototype losses, the prototypes get a zero gradient
    for the first ``freeze_prototypes_updates`` training passes, and they are projected
    back onto the unit sphere before each pass. The returned world-model TensorDict is
    that of the first view, with the sample's batch size (the actor-critic starts from
    it).

    Args:
        world_model: the world model without decoder (:func:`dreamerpro_components`).
        encoder: the world model's image encoder (its momentum copy computes targets).
        prototypes: the prototypes (DreamerPro: 2,500 of width 32).
        observation_projection: ``e_t -> W_o e_t`` (width of the prototypes).
        latent_projection: ``[z_t, h_t] -> W_s [z_t, h_t]``.
        image_channels: channels of the images (checked, to catch channels-last input).
        temperature: softmax temperature ``tau`` (0.1).
        sinkhorn_epsilon: Sinkhorn entropy weight (0.0125, DreamerPro's DMC setting).
        sinkhorn_iterations: Sinkhorn iterations (3).
        max_shift: largest translation of the views, pixels (3).
        warm_up: first steps of each sequence left out of the prototype losses (1).
        ema_fraction: rate of the momentum encoder (0.05 per update).
        freeze_prototypes_updates: training passes with frozen prototypes (10,000).
        lambda_swav, lambda_temporal, lambda_norm: weights of the three terms (1, 1, 1).
        **kwargs: arguments of :class:`~torchrl.objectives.DreamerV3ModelLoss` (KL,
            reward and continuation settings; the reconstruction settings are unused).

    Output entries: ``loss_model_swav``, ``loss_model_temporal``, ``loss_model_norm``,
    DreamerV3's KL, reward and continuation terms, and the detached metrics
    ``prototype_usage`` (share of prototypes that are some image's most likely
    assignment) and ``temporal_agreement`` (share of steps whose latent state picks its
    image's most likely prototype).

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3, synthetic_replay_sample
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> world_model, modules = dreamerpro_components(agent, num_prototypes=16, prototype_dim=8)
        >>> loss = DreamerProModelLoss(world_model, **modules, lambda_continue=1.0,
        ...                            num_reward_bins=agent.config.num_reward_bins)
        >>> losses, output = loss(synthetic_replay_sample(agent, 2, 4))
        >>> sorted(key for key in losses.keys() if key.startswith("loss_"))  # doctest: +NORMALIZE_WHITESPACE
        ['loss_model_continue', 'loss_model_kl', 'loss_model_norm', 'loss_model_reward',
         'loss_model_swav', 'loss_model_temporal']
        >>> output.batch_size, ("next", "reco_pixels") in output.keys(True)
        (torch.Size([2, 4]), False)
    """

    @dataclass
    class _AcceptedKeys(DreamerV3ModelLoss._AcceptedKeys):
        """Configurable keys (those of ``DreamerV3ModelLoss`` and the following).

        Attributes:
            encoded: encoder output ``e_t``, under ``"next"``. Default ``"encoded_latents"``.
            state: posterior sample ``z_t``, under ``"next"``. Default ``"state"``.
            belief: RSSM belief ``h_t``, under ``"next"``. Default ``"belief"``.
        """

        encoded: NestedKey = "encoded_latents"
        state: NestedKey = "state"
        belief: NestedKey = "belief"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys

    def __init__(
        self,
        world_model: TensorDictModule,
        *,
        encoder: nn.Module,
        prototypes: Prototypes,
        observation_projection: nn.Module,
        latent_projection: nn.Module,
        image_channels: int = 3,
        temperature: float = 0.1,
        sinkhorn_epsilon: float = 0.0125,
        sinkhorn_iterations: int = 3,
        max_shift: float = 3.0,
        warm_up: int = 1,
        ema_fraction: float = 0.05,
        freeze_prototypes_updates: int = 10_000,
        lambda_swav: float = 1.0,
        lambda_temporal: float = 1.0,
        lambda_norm: float = 1.0,
        **kwargs,
    ):
        if kwargs.pop("detach_output", False):
            raise ValueError(
                "DreamerProModelLoss needs the world-model output with its graph: "
                "detach_output must be False."
            )
        if not 0.0 < ema_fraction <= 1.0:
            raise ValueError(f"ema_fraction must be in (0, 1], got {ema_fraction}.")
        if warm_up < 0 or freeze_prototypes_updates < 0:
            raise ValueError(
                f"warm_up and freeze_prototypes_updates must be non-negative; got {warm_up} "
                f"and {freeze_prototypes_updates}."
            )
        super().__init__(world_model, detach_output=False, **kwargs)
        self.image_channels = image_channels
        self.prototypes = prototypes
        self.latent_projection = latent_projection
        # The online image embedder (encoder, then projection) and its momentum copy: the
        # copy's weights are buffers (saved, never optimised) read by the same modules.
        self.observation_embedder = nn.Sequential(encoder, observation_projection)
        self.momentum_params = TensorDictParams(
            from_module(self.observation_embedder).data.clone(), no_convert=True
        )
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.temperature = temperature
        self.sinkhorn_epsilon = sinkhorn_epsilon
        self.sinkhorn_iterations = sinkhorn_iterations
        self.max_shift = max_shift
        self.warm_up = warm_up
        self.ema_fraction = ema_fraction
        self.freeze_prototypes_updates = freeze_prototypes_updates
        self.lambda_swav = lambda_swav
        self.lambda_temporal = lambda_temporal
        self.lambda_norm = lambda_norm

    @property
    def image_key(self) -> NestedKey:
        """The image entry, ``("next", pixels)``."""
        pixels = self.tensor_keys.pixels
        if isinstance(pixels, list):
            raise ValueError(f"DreamerProModelLoss supports one image key, got {pixels}.")
        return unravel_key(("next", pixels))

    @property
    def extra_in_keys(self) -> list[NestedKey]:
        """Sample entries this loss reads beyond the world model's inputs (none)."""
        return []

    def _next(self, key: NestedKey) -> NestedKey:
        return unravel_key(("next", key))

    def _read(self, next_output: TensorDictBase, key: NestedKey, what: str) -> torch.Tensor:
        value = next_output.get(key, None)
        if value is None:
            raise ValueError(
                f"DreamerProModelLoss reads {what} under {self._next(key)!r} of the world-model "
                f"output; it has {sorted(map(str, next_output.keys(True, True)))}."
            )
        return value

    def forward(self, tensordict: TensorDictBase) -> tuple[TensorDict, TensorDictBase]:
        if tensordict.ndim != 2 or tensordict.shape[1] <= self.warm_up:
            raise ValueError(
                f"DreamerProModelLoss reads (batch, time) sequences longer than warm_up="
                f"{self.warm_up} steps; got batch size {tuple(tensordict.batch_size)}."
            )
        images = tensordict.get(self.image_key, None)
        if images is None:
            raise ValueError(f"DreamerProModelLoss needs the entry {self.image_key!r} (images).")
        check_chw_image(images, self.image_key, channels=self.image_channels)
        check_image_scale(images, self.image_key)
        unit = image_to_unit_float(images.detach())
        views = random_translate(torch.cat([unit, unit]), self.max_shift)
        output = self.world_model(self._two_views(tensordict, views))
        losses = self._dreamer_terms(output.get("next"))
        # A training pass moves the momentum embedder and counts towards the prototype freeze.
        update = self.training and torch.is_grad_enabled()
        losses.update(self._prototype_terms(output.get("next"), views, update))
        clear_loss_weakrefs(self, tensordict, losses)
        return losses, output[: tensordict.shape[0]]

    def _two_views(self, tensordict: TensorDictBase, views: torch.Tensor) -> TensorDictBase:
        """The world model's input for both views, ``(2B, T)``, the true reward renamed.

        Every entry is kept (the rollout's reset key ``is_init`` is not among the world
        model's ``in_keys``), as :class:`~torchrl.objectives.DreamerV3ModelLoss` keeps them.
        """
        keys = self.tensor_keys
        data = tensordict.select(*tensordict.keys(True, True))
        data = torch.cat([data, data], 0)
        data.set(self.image_key, views)
        data.rename_key_(self._next(keys.reward), self._next(keys.true_reward))
        return data

    def _dreamer_terms(self, next_output: TensorDictBase) -> TensorDict:
        """DreamerV3's KL, reward and continuation terms, as ``DreamerV3ModelLoss`` computes them."""
        keys = self.tensor_keys
        posterior, prior = (
            next_output.get(keys.posterior_logits),
            next_output.get(keys.prior_logits),
        )
        if self.kl_mode == "separate":
            dynamic, representation = categorical_kl_terms(
                posterior, prior, free_nats=self.free_bits, unimix=self.unimix
            )
            terms = {
                "loss_model_dynamic": self.lambda_kl * self.lambda_dynamic * dynamic,
                "loss_model_representation": self.lambda_kl
                * self.lambda_representation
                * representation,
            }
        else:
            kl = categorical_kl_balanced(
                posterior, prior, alpha=self.kl_alpha, free_bits=self.free_bits
            )
            terms = {"loss_model_kl": self.lambda_kl * kl}
        true_reward = next_output.get(keys.true_reward)
        if self.reward_two_hot:
            logits = next_output.get(keys.reward_logits)
            if logits.shape[-1] != self.num_reward_bins:
                raise ValueError(
                    f"The reward head must output logits over {self.num_reward_bins} bins under "
                    f"{keys.reward_logits!r}; got shape {tuple(logits.shape)}."
                )
            reward = two_hot_cross_entropy(logits, true_reward, self.reward_bins)
        else:
            prediction = next_output.get(keys.reward)
            reward = (symlog(true_reward) - symlog(prediction)).pow(2).squeeze(-1)
        terms["loss_model_reward"] = self.lambda_reward * reward.mean()
        continue_pred = next_output.get(keys.continue_pred, None)
        terminated = next_output.get(keys.terminated, next_output.get(keys.done, None))
        if self.lambda_continue > 0 and continue_pred is not None and terminated is not None:
            target = (~terminated.bool()).float() * self.continue_target_scale
            continuation = F.binary_cross_entropy_with_logits(
                continue_pred.squeeze(-1), target.squeeze(-1)
            )
            terms["loss_model_continue"] = self.lambda_continue * continuation
        return TensorDict({name: value.reshape(1) for name, value in terms.items()})

    @torch.no_grad()
    def _targets(self, views: torch.Tensor, update: bool) -> torch.Tensor:
        """Sinkhorn assignments ``(2B, T - warm_up, K)`` of the momentum embedder, per view."""
        if update:  # xi <- (1 - fraction) xi + fraction theta
            online = from_module(self.observation_embedder).data
            self.momentum_params.data.lerp_(online, self.ema_fraction)
        weights = dict(self.momentum_params.flatten_keys(".").items())
        target = torch.func.functional_call(
            self.observation_embedder, weights, (views[:, self.warm_up :],)
        )
        scores = self.prototypes(F.normalize(target.float(), dim=-1), frozen=True)
        batch = views.shape[0] // 2
        num_prototypes = scores.shape[-1]
        assignments = [
            sinkhorn_knopp(
                view.reshape(-1, num_prototypes), self.sinkhorn_epsilon, self.sinkhorn_iterations
            )
            for view in (scores[:batch], scores[batch:])
        ]
        return torch.cat(assignments).reshape(scores.shape)

    def _prototype_terms(
        self, next_output: TensorDictBase, views: torch.Tensor, update: bool
    ) -> dict[str, torch.Tensor]:
        keys = self.tensor_keys
        frozen = self.updates < self.freeze_prototypes_updates
        self.prototypes.normalize_()
        projection = self.observation_embedder[1]
        embedding = projection(self._read(next_output, keys.encoded, "the encoder output"))
        state = self._read(next_output, keys.state, "the posterior sample")
        latent = torch.cat([state, self._read(next_output, keys.belief, "the belief")], -1)
        latent_embedding = self.latent_projection(latent)
        norm = projection_norm_loss(embedding) + projection_norm_loss(latent_embedding)

        targets = self._targets(views, update)
        num_prototypes = targets.shape[-1]
        start = self.warm_up
        image_log_probs, latent_log_probs = (
            prototype_log_probs(
                self.prototypes(F.normalize(value[:, start:].float(), dim=-1), frozen=frozen),
                self.temperature,
            )
            for value in (embedding, latent_embedding)
        )
        batch = views.shape[0] // 2

        def flat(value: torch.Tensor) -> torch.Tensor:
            return value.reshape(-1, num_prototypes)

        swav = swapped_prediction_loss(
            flat(image_log_probs[:batch]),
            flat(image_log_probs[batch:]),
            flat(targets[:batch]),
            flat(targets[batch:]),
        )
        temporal = temporal_prototype_loss(flat(latent_log_probs), flat(targets))
        if update:
            self.updates += 1
        with torch.no_grad():
            chosen = flat(targets).argmax(-1)
            used = torch.zeros(num_prototypes, device=chosen.device).index_fill_(0, chosen, 1.0)
            agreement = (flat(latent_log_probs).argmax(-1) == chosen).float().mean()
        return {
            "loss_model_swav": (self.lambda_swav * swav).reshape(1),
            "loss_model_temporal": (self.lambda_temporal * temporal).reshape(1),
            "loss_model_norm": (self.lambda_norm * norm).reshape(1),
            "prototype_usage": used.mean(),
            "temporal_agreement": agreement,
        }


def decoder_free_world_model(agent: DreamerV3Agent) -> TensorDictSequential:
    """The agent's world model without its image decoder (same modules, shared weights).

    An agent built without decoder (``make_dreamer_v3(..., decoder=False)``) gives its own
    world model. Either way the modules sit at the same positions (encoder, RSSM rollout,
    reward head, reward decoding, continuation head), so a loss's ``state_dict`` has the
    same keys for both agents.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> len(agent.world_model.module), len(decoder_free_world_model(agent).module)
        (6, 5)
    """
    if agent.decoder is None:
        return agent.world_model
    modules = [
        module
        for module in agent.world_model.module
        if getattr(module, "module", None) is not agent.decoder
    ]
    return TensorDictSequential(*modules)


def dreamerpro_components(
    agent: DreamerV3Agent, *, num_prototypes: int = 2500, prototype_dim: int = 32
) -> tuple[TensorDictSequential, dict[str, Any]]:
    """The world model and modules of a :class:`DreamerProModelLoss` for an agent.

    The agent may be built with or without decoder (``make_dreamer_v3(..., decoder=False)``,
    the recipe's DreamerPro agent); the world model and the loss's ``state_dict`` keys are
    the same for both.

    Returns:
        The agent's world model without the decoder (encoder, RSSM rollout, reward and
        continuation heads, shared with the agent) and the keyword arguments
        ``encoder``, ``prototypes`` (``num_prototypes`` of width ``prototype_dim``),
        ``observation_projection`` (linear, encoder output to the prototype width) and
        ``latent_projection`` (linear, latent features ``(z, h)`` to the prototype width).

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> world_model, modules = dreamerpro_components(agent)
        >>> ("next", "reco_pixels") in world_model.out_keys, modules["prototypes"].weight.shape
        (False, torch.Size([2500, 32]))
        >>> free = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                        image_mults=(1, 2), device="cpu", decoder=False)
        >>> dreamerpro_components(free)[0] is free.world_model
        True
    """
    device = next(agent.world_model.parameters()).device
    modules = {
        "encoder": agent.encoder,
        "prototypes": Prototypes(num_prototypes, prototype_dim),
        "observation_projection": nn.Linear(agent.encoded_dim, prototype_dim),
        "latent_projection": nn.Linear(agent.config.feature_dim, prototype_dim),
    }
    for name in ("prototypes", "observation_projection", "latent_projection"):
        modules[name] = modules[name].to(device)
    return decoder_free_world_model(agent), modules
