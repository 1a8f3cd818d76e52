"""Size presets of the pixel DreamerV3 agent built by :func:`make_dreamer_v3`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["DreamerV3Config", "DREAMER_V3_PRESETS", "dreamer_v3_config"]


@dataclass(frozen=True)
class DreamerV3Config:
    """Sizes of a pixel DreamerV3 agent (names follow TorchRL's DreamerV3 modules).

    Attributes:
        image_depth: base channel count of the image encoder/decoder; stage ``i``
            has ``image_depth * image_mults[i]`` channels.
        image_mults: channel multipliers of the stride-2 stages (4 stages take a
            64x64 image to 4x4).
        kernel_size: convolution kernel size.
        rnn_hidden_dim: RSSM deterministic state ``h`` ("deter").
        hidden_dim: RSSM hidden layers ("hidden").
        num_categoricals: categorical variables of ``z`` ("stoch").
        num_classes: classes of each categorical variable ("classes").
        recurrent_model: ``"block_gru"`` (DreamerV3's grouped GRU) or ``"gru"``.
        num_blocks: groups of the block GRU and of the decoder's input projection.
        dynamics_layers: block-linear layers of the recurrent step.
        prior_layers: hidden layers of the prior head.
        posterior_layers: hidden layers of the posterior head.
        mlp_units: width of the actor, critic, reward and continuation MLPs.
        actor_layers: hidden layers of the actor.
        critic_layers: hidden layers of the critic.
        head_layers: hidden layers of the reward and continuation heads.
        num_reward_bins: two-hot bins of the reward head.
        num_value_bins: two-hot bins of the critic.
        unimix: uniform mixture of the latent categoricals.
        policy_min_std: minimum standard deviation of the actor.
        policy_max_std: maximum standard deviation of the actor.
        norm_eps: RMS normalisation epsilon.

    Examples:
        >>> config = DreamerV3Config(rnn_hidden_dim=64, num_categoricals=4, num_classes=8)
        >>> config.state_dim, config.feature_dim
        (32, 96)
    """

    image_depth: int = 16
    image_mults: tuple[int, ...] = (2, 3, 4, 4)
    kernel_size: int = 5
    rnn_hidden_dim: int = 2048
    hidden_dim: int = 256
    num_categoricals: int = 32
    num_classes: int = 16
    recurrent_model: str = "block_gru"
    num_blocks: int = 8
    dynamics_layers: int = 1
    prior_layers: int = 2
    posterior_layers: int = 1
    mlp_units: int = 256
    actor_layers: int = 3
    critic_layers: int = 3
    head_layers: int = 1
    num_reward_bins: int = 255
    num_value_bins: int = 255
    unimix: float = 0.01
    policy_min_std: float = 0.1
    policy_max_std: float = 1.0
    norm_eps: float = 1e-4

    @property
    def state_dim(self) -> int:
        """Width of the flattened stochastic state ``z``."""
        return self.num_categoricals * self.num_classes

    @property
    def feature_dim(self) -> int:
        """Width of the latent features ``(z, h)`` read by the heads."""
        return self.state_dim + self.rnn_hidden_dim


#: Size presets. ``paper`` follows DreamerV3's 12M-parameter setting (``size12m``:
#: deter 2048, hidden 256, 32 categoricals of 16 classes, CNN depth 16, MLP width 256),
#: ``small`` is meant for CPU runs and ``tiny`` for tests and smoke runs. ``size1m`` and
#: ``size12m`` are the official DreamerV3's settings of those names (``dreamerv3/
#: configs.yaml`` of danijar/dreamerv3 at f8817c4, on its defaults: stoch 32, blocks 8,
#: CNN mults 2, 3, 4, 4, kernel 5, image/observation/dynamics layers 2/1/1, reward and
#: continuation heads 1 layer, actor and critic 3, 255 bins, unimix 0.01, std 0.1 to 1,
#: norm eps 1e-4), for ``benchmarks/official_update_cost.py``; ``size12m`` equals
#: ``paper``. Every field matches; the layers differ where TorchRL's modules do
#: (stride-2 convolutions where the official default convolves at full resolution and
#: max-pools or upsamples, a decoder input projection from the whole latent where the
#: official one projects ``deter`` block-wise and ``stoch`` through a hidden layer).
DREAMER_V3_PRESETS: dict[str, DreamerV3Config] = {
    "tiny": DreamerV3Config(
        image_depth=2,
        rnn_hidden_dim=32,
        hidden_dim=32,
        num_categoricals=4,
        num_classes=4,
        num_blocks=2,
        mlp_units=32,
        actor_layers=1,
        critic_layers=1,
        num_reward_bins=33,
        num_value_bins=33,
    ),
    "small": DreamerV3Config(
        image_depth=8,
        rnn_hidden_dim=256,
        hidden_dim=128,
        num_categoricals=16,
        num_classes=8,
        num_blocks=4,
        mlp_units=128,
        actor_layers=2,
        critic_layers=2,
    ),
    "paper": DreamerV3Config(),
    "size1m": DreamerV3Config(
        image_depth=4,
        rnn_hidden_dim=512,
        hidden_dim=64,
        num_categoricals=32,
        num_classes=4,
        num_blocks=8,
        mlp_units=64,
    ),
    "size12m": DreamerV3Config(
        image_depth=16,
        rnn_hidden_dim=2048,
        hidden_dim=256,
        num_categoricals=32,
        num_classes=16,
        num_blocks=8,
        mlp_units=256,
    ),
}


def dreamer_v3_config(preset: str | DreamerV3Config = "small", **overrides) -> DreamerV3Config:
    """Returns a preset's :class:`DreamerV3Config`, with some fields replaced.

    Args:
        preset: a name of :data:`DREAMER_V3_PRESETS` or a config.
        **overrides: fields of :class:`DreamerV3Config` to replace.

    Examples:
        >>> dreamer_v3_config("tiny", rnn_hidden_dim=64).rnn_hidden_dim
        64
        >>> dreamer_v3_config("paper").feature_dim
        2560
    """
    if isinstance(preset, DreamerV3Config):
        config = preset
    elif preset in DREAMER_V3_PRESETS:
        config = DREAMER_V3_PRESETS[preset]
    else:
        raise ValueError(
            f"Unknown DreamerV3 preset {preset!r}; expected one of {sorted(DREAMER_V3_PRESETS)} "
            "or a DreamerV3Config."
        )
    fields = {field.name for field in dataclasses.fields(DreamerV3Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"Unknown DreamerV3Config fields {unknown}; known fields: {sorted(fields)}."
        )
    if "image_mults" in overrides:
        overrides["image_mults"] = tuple(overrides["image_mults"])
    return dataclasses.replace(config, **overrides)
