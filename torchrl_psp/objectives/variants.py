"""Full learner objectives of the project's variants (SPEC §4)."""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey, unravel_key
from torchrl.modules import DreamerV3ImageDecoder
from torchrl.objectives import (
    DreamerV3ActorLoss,
    DreamerV3Loss,
    DreamerV3ModelLoss,
    DreamerV3ValueLoss,
)
from torchrl.objectives.utils import ValueEstimators

from torchrl_psp.modules.adversarial_head import AdversarialActionHead
from torchrl_psp.modules.dreamer import DreamerV3Agent
from torchrl_psp.modules.saliency import PolicySaliency
from torchrl_psp.objectives.dreamerpro import DreamerProModelLoss, dreamerpro_components
from torchrl_psp.objectives.psp import PSPModelLoss
from torchrl_psp.objectives.reconstruction import ImageReconstructionModelLoss, check_image_scale
from torchrl_psp.objectives.sd import SDModelLoss
from torchrl_psp.variants import ADVERSARIAL_HEAD_VARIANTS, VARIANT_SPECS, variant_spec

__all__ = [
    "VARIANTS",
    "DreamerV3VariantLoss",
    "make_model_loss",
    "make_variant_loss",
]

#: Variants with a world model and what their world-model loss does (read from
#: :data:`~torchrl_psp.variants.VARIANT_SPECS`; model-free baselines are not here).
VARIANTS: dict[str, str] = {
    name: spec.description for name, spec in VARIANT_SPECS.items() if spec.world_model
}


class DreamerV3VariantLoss(DreamerV3Loss):
    """:class:`~torchrl.objectives.DreamerV3Loss` whose ``in_keys`` include its model loss's extra keys.

    :class:`~torchrl.trainers.algorithms.DreamerV3OptimizationStepper` keeps only
    ``in_keys`` of a sample; this class adds the model loss's ``extra_in_keys``
    (segments, task masks, ...), so that they reach the loss. Arguments as
    :class:`~torchrl.objectives.DreamerV3Loss`; :func:`make_variant_loss` builds one.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> loss = make_variant_loss(agent, "psp")
        >>> [key for key in loss.in_keys if key not in DreamerV3Loss.in_keys.fget(loss)]
        [('next', 'segments')]
    """

    @property
    def in_keys(self) -> list[NestedKey]:
        extra = getattr(self.model_loss, "extra_in_keys", [])
        return list(dict.fromkeys([*super().in_keys, *(unravel_key(key) for key in extra)]))

    def forward(self, sample: TensorDictBase) -> TensorDictBase:
        if isinstance(self.model_loss, (ImageReconstructionModelLoss, DreamerProModelLoss)):
            # these losses check their own images
            return super().forward(sample)
        pixels = self.model_loss.tensor_keys.pixels
        for key in pixels if isinstance(pixels, list) else [pixels]:
            key = unravel_key(("next", key))
            images = sample.get(key, None)
            if isinstance(images, torch.Tensor):
                check_image_scale(images, key)
        return super().forward(sample)


def make_model_loss(
    agent: DreamerV3Agent,
    variant: str = "psp",
    *,
    adversarial_epsilon: float | None = None,
    **kwargs,
) -> DreamerV3ModelLoss:
    """World-model loss of a variant, for the agent of :func:`~torchrl_psp.modules.make_dreamer_v3`.

    DreamerV3 settings: separate KL terms (dynamics 0.5, representation 0.1, free
    nats 1), the agent's unimix and reward bins, continuation loss on,
    ``reco_symlog=False`` and ``detach_output=False``. ``dreamerpro`` reads the agent's
    world model without its decoder, with DreamerPro's prototypes and projections
    (:func:`~torchrl_psp.objectives.dreamerpro.dreamerpro_components`); its agent may be
    built without decoder (``make_dreamer_v3(..., decoder=False)``, what the recipe does,
    :attr:`~torchrl_psp.variants.VariantSpec.decoder`), the other variants need one.

    Args:
        agent: the agent.
        variant: a key of :data:`VARIANTS`.
        adversarial_epsilon: scale of the reversed gradient that PSP's adversarial head
            gives the encoder; ``None``: the paper's ``1e3``
            (:class:`~torchrl_psp.modules.AdversarialActionHead`'s default). Only for
            variants with the head.
        **kwargs: replace or add arguments of the loss class (e.g. ``alpha``, or a
            whole ``adversarial_head=...``).

    Raises:
        ValueError: a variant without world model, a reconstructing variant for an
            agent without decoder, or ``adversarial_epsilon`` for a variant without
            the adversarial head.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> type(make_model_loss(agent, "psp_noseg")).__name__
        'PSPModelLoss'
    """
    spec = variant_spec(variant)
    if not spec.world_model:
        raise ValueError(
            f"variant={variant} has no world model ({spec.agent} agent): see "
            "torchrl_psp.baselines for its loss."
        )
    if spec.decoder and agent.decoder is None:
        raise ValueError(
            f"variant={variant} reconstructs images: it needs an agent with a decoder "
            "(make_dreamer_v3(..., decoder=True)); this one was built with decoder=False."
        )
    if adversarial_epsilon is not None and not spec.adversarial_head:
        raise ValueError(
            f"adversarial_epsilon={adversarial_epsilon} is set, but variant={variant} has no "
            f"adversarial action head; variants with one: {list(ADVERSARIAL_HEAD_VARIANTS)}."
        )
    config = agent.config
    world_model = agent.world_model
    options: dict[str, Any] = {
        "kl_mode": "separate",
        "lambda_dynamic": 0.5,
        "lambda_representation": 0.1,
        "free_bits": 1.0,
        "unimix": config.unimix,
        "lambda_continue": 1.0,
        "num_reward_bins": config.num_reward_bins,
        "reco_symlog": False,
        "detach_output": False,
    }
    if spec.model_loss != "dreamer":
        options["image_channels"] = agent.image_shape[0]
    if spec.model_loss == "psp":
        if spec.saliency is not None:
            value = spec.saliency == "value"
            options["saliency"] = PolicySaliency(
                agent.encoder,
                agent.posterior,
                agent.value if value else agent.actor,
                head_output_key="state_value" if value else "loc",
            )
        if spec.adversarial_head:
            epsilon = {} if adversarial_epsilon is None else {"epsilon": adversarial_epsilon}
            options["adversarial_head"] = AdversarialActionHead(
                agent.encoded_dim, agent.action_dim, num_cells=config.mlp_units, **epsilon
            )
        options["use_segments"] = spec.segments
        loss_class = PSPModelLoss
    elif spec.model_loss == "sd":
        if spec.mask_head:
            options["mask_decoder"] = DreamerV3ImageDecoder(
                config.feature_dim,
                image_shape=(1, *agent.image_shape[1:]),
                depth=config.image_depth,
                mults=config.image_mults,
                kernel_size=config.kernel_size,
                num_blocks=config.num_blocks,
                norm_eps=config.norm_eps,
            )
        loss_class = SDModelLoss
    elif spec.model_loss == "dreamerpro":  # the world model without its decoder
        world_model, modules = dreamerpro_components(agent)
        options.update(modules)
        loss_class = DreamerProModelLoss
    else:
        loss_class = DreamerV3ModelLoss
    options.update(kwargs)
    device = next(agent.world_model.parameters()).device
    loss = loss_class(world_model, **options).to(device)
    loss.set_keys(pixels=agent.pixels_key)
    return loss


def make_variant_loss(
    agent: DreamerV3Agent,
    variant: str = "psp",
    *,
    imagination_horizon: int = 15,
    horizon: float = 333.0,
    lmbda: float = 0.95,
    entropy_bonus: float = 3e-4,
    use_reinforce: bool = True,
    slow_critic_regularization: float = 1.0,
    replay_value_loss_weight: float = 0.3,
    model_loss_kwargs: dict[str, Any] | None = None,
) -> DreamerV3VariantLoss:
    """The full learner objective (world model, actor, critic) of one variant.

    Actor: DreamerV3's imagination loss (REINFORCE by default) over ``imagination_horizon``
    steps with the continuation model, lambda-returns with discount ``1 - 1/horizon``.
    Critic: two-hot, regularised towards its slow copy. Replay-value term weighted
    ``replay_value_loss_weight``.

    Args:
        agent: the agent of :func:`~torchrl_psp.modules.make_dreamer_v3`.
        variant: a key of :data:`VARIANTS`.
        imagination_horizon: imagined steps of the actor loss.
        horizon: discount horizon (``gamma = 1 - 1/horizon``).
        lmbda: lambda of the returns.
        entropy_bonus: actor entropy weight.
        use_reinforce: actor gradient: REINFORCE with the critic as baseline (``True``,
            DreamerV3's choice and TorchRL's validated recipe) or backpropagation of the
            imagined returns through the learned dynamics (``False``), which exploits the
            errors of a young world model.
        slow_critic_regularization: weight of the slow-critic regulariser.
        replay_value_loss_weight: weight of the replay-value term.
        model_loss_kwargs: passed to :func:`make_model_loss`.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> loss = make_variant_loss(agent, "sd_approx")
        >>> ("next", "task_mask") in loss.in_keys
        True
    """
    model_loss = make_model_loss(agent, variant, **(model_loss_kwargs or {}))
    device = next(agent.world_model.parameters()).device
    actor_loss = DreamerV3ActorLoss(
        agent.actor,
        agent.value,
        agent.imagination_env,
        continuation_model=agent.continuation_model,
        imagination_horizon=imagination_horizon,
        entropy_bonus=entropy_bonus,
        use_reinforce=use_reinforce,
    )
    actor_loss.make_value_estimator(ValueEstimators.TDLambda, gamma=1 - 1 / horizon, lmbda=lmbda)
    actor_loss.to(device)
    value_loss = DreamerV3ValueLoss(
        agent.value,
        value_loss="two_hot",
        num_value_bins=agent.config.num_value_bins,
        actor_loss=actor_loss,
        slow_critic_regularization=slow_critic_regularization,
    ).to(device)
    return DreamerV3VariantLoss(
        model_loss,
        actor_loss,
        value_loss,
        replay_value_loss_weight=replay_value_loss_weight,
        continuation_horizon=horizon,
        lmbda=lmbda,
    )
