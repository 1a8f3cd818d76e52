"""A complete pixel DreamerV3 agent assembled from TorchRL's DreamerV3 modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictSequential,
)
from tensordict.utils import NestedKey
from torch import nn
from torchrl.data import Composite, TensorSpec, Unbounded
from torchrl.envs.model_based.dreamer import DreamerEnv
from torchrl.modules import (
    DreamerV3ImageDecoder,
    DreamerV3ImageEncoder,
    RSSMPosteriorV3,
    RSSMPriorV3,
    RSSMRolloutV3,
    RSSMStateEstimatorV3,
    SymExpTwoHot,
    WorldModelWrapper,
)
from torchrl.modules.distributions import IndependentNormal

from torchrl_psp.modules.actor import ActionClamp, BoundedNormalActorNet, PolicyCarry
from torchrl_psp.modules.dreamer_config import DreamerV3Config, dreamer_v3_config
from torchrl_psp.modules.image_codec import ChannelsLastImageDecoder, ChannelsLastImageEncoder
from torchrl_psp.modules.mlp import NormSiLUMLP
from torchrl_psp.utils.device import resolve_device

__all__ = ["DreamerV3Agent", "EpisodeStartRollout", "default_device", "make_dreamer_v3"]


def default_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` picks CUDA when available, else CPU.

    The rule of :func:`torchrl_psp.utils.device.resolve_device`.

    Examples:
        >>> default_device("cpu")
        device(type='cpu')
    """
    return resolve_device(device)


@dataclass
class DreamerV3Agent:
    """The modules of a pixel DreamerV3 agent (see :func:`make_dreamer_v3`).

    Attributes:
        config: sizes.
        image_shape: ``(C, H, W)`` of the images.
        action_dim: width of the action.
        pixels_key: image key, read under ``"next"`` by the world model and at the
            root by :attr:`policy`.
        world_model: ``TensorDictSequential`` for :class:`~torchrl.objectives.DreamerV3ModelLoss`:
            reads ``("next", pixels_key)``, ``"action"``, ``"state"``, ``"belief"``,
            ``"is_init"``; writes ``("next", k)`` for ``k`` in ``encoded_latents``,
            ``prior_logits``, ``posterior_logits``, ``state``, ``belief``,
            ``reco_pixels`` (only with a decoder), ``reward_logits``, ``reward``,
            ``continue_pred``.
        encoder: the image encoder (shared by world model, policy and saliency).
        prior: the RSSM prior (also the imagination dynamics).
        posterior: the RSSM posterior.
        decoder: the image decoder, ``(z, h) -> (C, H, W)`` on the ``[0, 1]`` scale;
            ``None`` for an agent built with ``decoder=False`` (DreamerPro).
        actor: probabilistic actor, ``("state", "belief") -> ("loc", "scale", "action")``.
        value: critic, ``("state", "belief") -> ("state_value_logits", "state_value")``.
        continuation_model: ``("state", "belief") -> "continuation"`` probability.
        imagination_env: :class:`~torchrl.envs.model_based.dreamer.DreamerEnv` for
            :class:`~torchrl.objectives.DreamerV3ActorLoss`.
        policy: acting policy for a collector: encodes the root image, updates the
            RSSM state with :class:`~torchrl.modules.RSSMStateEstimatorV3` and samples
            an action, clamped to the action bounds (the action the environment executes,
            which is what the replay stores); the environment must carry the entries of
            :meth:`primer_spec`.
    """

    config: DreamerV3Config
    image_shape: tuple[int, int, int]
    action_dim: int
    pixels_key: NestedKey
    world_model: TensorDictSequential
    encoder: DreamerV3ImageEncoder
    prior: RSSMPriorV3
    posterior: RSSMPosteriorV3
    decoder: DreamerV3ImageDecoder | None
    actor: ProbabilisticTensorDictSequential
    value: TensorDictSequential
    continuation_model: TensorDictSequential
    imagination_env: DreamerEnv
    policy: TensorDictSequential

    def parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter of the agent, once each (world model, actor, critic, policy).

        An agent built with ``decoder=False`` has no decoder parameters.

        Examples:
            >>> from torchrl.data import Bounded
            >>> def count(agent):
            ...     return sum(p.numel() for p in agent.parameters())
            >>> spec, shape = Bounded(-1, 1, (2,)), (3, 16, 16)
            >>> agent = make_dreamer_v3(spec, shape, preset="tiny", image_mults=(1, 2), device="cpu")
            >>> free = make_dreamer_v3(spec, shape, preset="tiny", image_mults=(1, 2), device="cpu",
            ...                        decoder=False)
            >>> count(agent) - count(free) == sum(p.numel() for p in agent.decoder.parameters())
            True
        """
        seen: set[int] = set()
        modules = (self.world_model, self.actor, self.value, self.continuation_model, self.policy)
        for module in modules:
            for parameter in module.parameters():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    yield parameter

    @property
    def encoded_dim(self) -> int:
        """Width of the encoder output ``e_t``."""
        return self.encoder.output_features(self.image_shape)

    def primer_spec(self) -> Composite:
        """Specs of the acting-state entries (zeros at reset) for a ``TensorDictPrimer``.

        Examples:
            >>> from torchrl.data import Bounded
            >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
            ...                         image_mults=(1, 2), device="cpu")
            >>> sorted(agent.primer_spec().keys())
            ['belief', 'previous_action', 'state']
        """
        return Composite(
            state=Unbounded(self.config.state_dim),
            belief=Unbounded(self.config.rnn_hidden_dim),
            previous_action=Unbounded(self.action_dim),
        )


class EpisodeStartRollout(RSSMRolloutV3):
    """:class:`~torchrl.modules.RSSMRolloutV3` that starts a sequence from its stored state.

    TorchRL's rollout zeroes the state, belief and action wherever ``is_init`` is true.
    On the first row of a sequence that starts an episode, that row is the transition
    ``o_0 -> o_1``: zeroing it makes ``o_1`` the first observation (``h_1 = f(0, 0, 0)``),
    drops ``a_0`` and never sees ``o_0``, while the acting policy (and the official
    DreamerV3, in training too) computes ``h_1 = f(h_0, z_0, a_0)`` from the posterior of
    ``o_0``. The root ``"state"`` and ``"belief"`` of that row are exactly that posterior,
    written by the acting policy from a zero state (:class:`~torchrl.modules.RSSMStateEstimatorV3`
    resets on ``is_init``). So on the first row of each sequence this rollout does not
    reset: it continues from the stored state with ``a_0``, as it does for a sequence that
    starts mid-episode. An ``is_init`` on a later row still resets there (zeroes).

    Examples:
        >>> from torchrl.data import Bounded
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> type(agent.world_model[1]).__name__, agent.world_model[1].reset_key
        ('EpisodeStartRollout', 'is_init')
    """

    def forward(self, tensordict):
        """Rolls out as :class:`~torchrl.modules.RSSMRolloutV3`, without a reset on row 0."""
        reset = tensordict.get(self.reset_key, None) if self.reset_key is not None else None
        if reset is None or tensordict.ndim == 0:
            return super().forward(tensordict)
        later = reset.clone()
        later[(slice(None),) * (tensordict.ndim - 1) + (0,)] = False
        tensordict.set(self.reset_key, later)
        try:
            output = super().forward(tensordict)
        finally:
            tensordict.set(self.reset_key, reset)
        output.set(self.reset_key, reset)
        return output


def _action_clamp(action_spec: TensorSpec) -> ActionClamp:
    """The spec's bounds (infinite for an unbounded spec)."""
    space = getattr(action_spec, "space", None)
    if space is None or not hasattr(space, "low"):
        inf = torch.full(action_spec.shape[-1:], float("inf"))
        return ActionClamp(-inf, inf)
    return ActionClamp(space.low.detach().cpu().float(), space.high.detach().cpu().float())


def _imagination_env(
    config: DreamerV3Config,
    prior: RSSMPriorV3,
    reward: TensorDictSequential,
    action_spec: TensorSpec,
    action_clamp: ActionClamp,
    device: torch.device,
) -> DreamerEnv:
    # The imagined transition sees the action the environment would execute (clamped);
    # the actor loss still reads the sampled "action".
    transition = TensorDictSequential(
        TensorDictModule(
            action_clamp,
            in_keys=["action"],
            out_keys=["executed_action"],
        ),
        TensorDictModule(
            prior,
            in_keys=["state", "belief", "executed_action"],
            out_keys=["_", "state", "belief"],
        ),
    )
    env = DreamerEnv(
        WorldModelWrapper(transition, reward),
        prior_shape=torch.Size([config.state_dim]),
        belief_shape=torch.Size([config.rnn_hidden_dim]),
        device=device,
    )
    env.observation_spec = Composite(
        state=Unbounded(config.state_dim, device=device),
        belief=Unbounded(config.rnn_hidden_dim, device=device),
    )
    env.state_spec = env.observation_spec.clone()
    env.action_spec = action_spec.clone().to(device)
    env.reward_spec = Unbounded((1,), device=device)
    return env


def make_dreamer_v3(
    action_spec: TensorSpec,
    image_shape: tuple[int, int, int] = (3, 64, 64),
    *,
    preset: str | DreamerV3Config = "small",
    pixels_key: NestedKey = "pixels",
    device: torch.device | str | None = None,
    decoder: bool = True,
    **overrides,
) -> DreamerV3Agent:
    """Builds a pixel DreamerV3 agent from TorchRL's DreamerV3 classes.

    Image encoder, RSSM V3 (block-GRU prior, posterior, :class:`~torchrl.modules.RSSMRolloutV3`
    on its fast path, reset by ``is_init`` except on a sequence's first row, where it starts
    from the stored acting state: :class:`EpisodeStartRollout`), image decoder, two-hot reward head,
    continuation head, bounded-normal actor and two-hot critic. The world model reads
    images as ``(*batch, C, H, W)``, ``uint8`` or float in ``[0, 1]``; use
    ``reco_symlog=False`` in the model loss (the decoder predicts the ``[0, 1]`` scale).

    ``decoder=False`` builds a reconstruction-free agent (DreamerPro's; the recipe reads
    :attr:`~torchrl_psp.variants.VariantSpec.decoder`): ``agent.decoder`` is ``None``, the
    world model writes no ``("next", "reco_pixels")`` and the agent has no decoder
    parameters (``preset="small"``, 64x64 images, 6-d actions: 751,243 parameters instead
    of 856,686). Every other module gets the same initial weights as with ``decoder=True``
    under the same seed (the decoder's initialisation is still drawn, then dropped).

    Args:
        action_spec: continuous action spec (its last dimension is the action width).
        image_shape: ``(C, H, W)``; ``H`` and ``W`` divisible by ``2 ** len(image_mults)``.
        preset: ``"tiny"``, ``"small"``, ``"paper"`` or a :class:`DreamerV3Config`.
        pixels_key: image key.
        device: where to build; ``None`` picks CUDA when available.
        decoder: build the image decoder (``False``: no decoder, no reconstruction).
        **overrides: fields of :class:`DreamerV3Config` to replace.

    Returns:
        The :class:`DreamerV3Agent`.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> B, T, cfg = 2, 3, agent.config
        >>> sample = TensorDict({
        ...     "state": torch.zeros(B, T, cfg.state_dim),
        ...     "belief": torch.zeros(B, T, cfg.rnn_hidden_dim),
        ...     "action": torch.zeros(B, T, 2),
        ...     "is_init": torch.zeros(B, T, 1, dtype=torch.bool),
        ...     ("next", "pixels"): torch.zeros(B, T, 3, 16, 16, dtype=torch.uint8),
        ... }, [B, T])
        >>> agent.world_model(sample)["next", "reco_pixels"].shape
        torch.Size([2, 3, 3, 16, 16])
        >>> free = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                        image_mults=(1, 2), device="cpu", decoder=False)
        >>> free.decoder is None, ("next", "reco_pixels") in free.world_model(sample).keys(True)
        (True, False)
    """
    config = dreamer_v3_config(preset, **overrides)
    device = default_device(device)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}.")
    image_shape = tuple(int(size) for size in image_shape)
    if not action_spec.shape:
        raise ValueError(
            f"action_spec must have an action dimension, got shape {action_spec.shape}."
        )
    action_dim = int(action_spec.shape[-1])
    features = config.feature_dim

    encoder = ChannelsLastImageEncoder(
        in_channels=image_shape[0],
        depth=config.image_depth,
        mults=config.image_mults,
        kernel_size=config.kernel_size,
        norm_eps=config.norm_eps,
    )
    prior = RSSMPriorV3(
        action_shape=(action_dim,),
        hidden_dim=config.hidden_dim,
        rnn_hidden_dim=config.rnn_hidden_dim,
        num_categoricals=config.num_categoricals,
        num_classes=config.num_classes,
        action_dim=action_dim,
        recurrent_model=config.recurrent_model,
        num_blocks=config.num_blocks,
        num_layers=config.dynamics_layers,
        prior_num_layers=config.prior_layers,
        norm_eps=config.norm_eps,
        unimix=config.unimix,
    )
    posterior = RSSMPosteriorV3(
        hidden_dim=config.hidden_dim,
        num_categoricals=config.num_categoricals,
        num_classes=config.num_classes,
        rnn_hidden_dim=config.rnn_hidden_dim,
        obs_embed_dim=encoder.output_features(image_shape),
        use_rms_norm=True,
        num_layers=config.posterior_layers,
        norm_eps=config.norm_eps,
        unimix=config.unimix,
    )
    image_decoder = ChannelsLastImageDecoder(
        features,
        image_shape=image_shape,
        depth=config.image_depth,
        mults=config.image_mults,
        kernel_size=config.kernel_size,
        num_blocks=config.num_blocks,
        norm_eps=config.norm_eps,
    )
    if not decoder:
        # Built and dropped: its initialisation's draws keep the random stream, and so the
        # initial weights of the heads, actor and critic, those of an agent with decoder.
        image_decoder = None

    def head(out_features: int, depth: int, outscale: float = 1.0) -> NormSiLUMLP:
        return NormSiLUMLP(
            features,
            out_features,
            depth=depth,
            num_cells=config.mlp_units,
            outscale=outscale,
            norm_eps=config.norm_eps,
        )

    reward_net = head(config.num_reward_bins, config.head_layers, outscale=0.0)
    reward_decoder = SymExpTwoHot(config.num_reward_bins)
    continuation_net = head(1, config.head_layers)
    latent = [("next", "state"), ("next", "belief")]
    reconstruction = (
        []
        if image_decoder is None
        else [TensorDictModule(image_decoder, in_keys=latent, out_keys=[("next", "reco_pixels")])]
    )
    world_model = TensorDictSequential(
        TensorDictModule(
            encoder, in_keys=[("next", pixels_key)], out_keys=[("next", "encoded_latents")]
        ),
        EpisodeStartRollout(
            TensorDictModule(
                prior,
                in_keys=["state", "belief", "action"],
                out_keys=[("next", "prior_logits"), ("next", "state"), ("next", "belief")],
            ),
            TensorDictModule(
                posterior,
                in_keys=[("next", "belief"), ("next", "encoded_latents")],
                out_keys=[("next", "posterior_logits"), ("next", "state")],
            ),
            reset_key="is_init",
        ),
        *reconstruction,
        TensorDictModule(reward_net, in_keys=latent, out_keys=[("next", "reward_logits")]),
        TensorDictModule(
            reward_decoder, in_keys=[("next", "reward_logits")], out_keys=[("next", "reward")]
        ),
        TensorDictModule(continuation_net, in_keys=latent, out_keys=[("next", "continue_pred")]),
    )
    imagined_reward = TensorDictSequential(
        TensorDictModule(reward_net, in_keys=["state", "belief"], out_keys=["reward_logits"]),
        TensorDictModule(reward_decoder, in_keys=["reward_logits"], out_keys=["reward"]),
    )
    continuation_model = TensorDictSequential(
        TensorDictModule(
            continuation_net, in_keys=["state", "belief"], out_keys=["continue_logits"]
        ),
        TensorDictModule(nn.Sigmoid(), in_keys=["continue_logits"], out_keys=["continuation"]),
    )
    actor = ProbabilisticTensorDictSequential(
        TensorDictModule(
            BoundedNormalActorNet(
                features,
                action_dim,
                depth=config.actor_layers,
                num_cells=config.mlp_units,
                min_std=config.policy_min_std,
                max_std=config.policy_max_std,
                norm_eps=config.norm_eps,
            ),
            in_keys=["state", "belief"],
            out_keys=["loc", "scale"],
        ),
        ProbabilisticTensorDictModule(
            in_keys=["loc", "scale"],
            out_keys=["action"],
            distribution_class=IndependentNormal,
            default_interaction_type=InteractionType.RANDOM,
            return_log_prob=True,
            log_prob_key="action_log_prob",
        ),
    )
    value = TensorDictSequential(
        TensorDictModule(
            head(config.num_value_bins, config.critic_layers, outscale=0.0),
            in_keys=["state", "belief"],
            out_keys=["state_value_logits"],
        ),
        TensorDictModule(
            SymExpTwoHot(config.num_value_bins),
            in_keys=["state_value_logits"],
            out_keys=["state_value"],
        ),
    )
    action_clamp = _action_clamp(action_spec).to(device)
    policy = TensorDictSequential(
        TensorDictModule(encoder, in_keys=[pixels_key], out_keys=["encoded_latents"]),
        RSSMStateEstimatorV3(prior, posterior),
        actor,
        # Stored and carried: the action the environment executes.
        TensorDictModule(action_clamp, in_keys=["action"], out_keys=["action"]),
        TensorDictModule(
            PolicyCarry(),
            in_keys=["state", "belief", "action"],
            out_keys=[("next", "state"), ("next", "belief"), ("next", "previous_action")],
        ),
    )
    for module in (world_model, actor, value, continuation_model, policy):
        module.to(device)
    return DreamerV3Agent(
        config=config,
        image_shape=image_shape,
        action_dim=action_dim,
        pixels_key=pixels_key,
        world_model=world_model,
        encoder=encoder,
        prior=prior,
        posterior=posterior,
        decoder=image_decoder,
        actor=actor,
        value=value,
        continuation_model=continuation_model,
        imagination_env=_imagination_env(
            config, prior, imagined_reward, action_spec, action_clamp, device
        ),
        policy=policy,
    )
