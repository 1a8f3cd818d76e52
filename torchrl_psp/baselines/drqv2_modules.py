"""DrQ-v2's networks as TorchRL modules: encoder, DDPG actor, twin critics, scheduled exploration."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.data import Bounded, TensorSpec
from torchrl.envs.utils import ExplorationType, exploration_type
from torchrl.modules import MLP, AdditiveGaussianModule, ConvNet

__all__ = [
    "DrQv2Actor",
    "DrQv2Agent",
    "DrQv2Critic",
    "DrQv2Encoder",
    "DrQv2Exploration",
    "linear_std",
    "make_drqv2",
]


def linear_std(step: float, init: float, final: float, duration: float) -> float:
    """DrQ-v2's exploration std: ``init`` at step 0, linear to ``final`` at ``duration``, then flat.

    Examples:
        >>> linear_std(0, 1.0, 0.1, 100), linear_std(50, 1.0, 0.1, 100), linear_std(300, 1.0, 0.1, 100)
        (1.0, 0.55, 0.1)
    """
    mix = min(max(step / duration, 0.0), 1.0)
    return (1.0 - mix) * init + mix * final


def _orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights and zero biases (DrQ-v2's initialisation; ReLU gain for convolutions)."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight, nn.init.calculate_gain("relu"))
        nn.init.zeros_(module.bias)


class DrQv2Encoder(nn.Module):
    """Four 3x3 convolutions of 32 channels (the first of stride 2), ReLU, flattened.

    Reads ``uint8`` or float images on the 0..255 scale, ``[..., C, H, W]``; scales them
    to ``x / 255 - 0.5``. A 64x64 input gives 32 x 25 x 25 = 20,000 features.
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int]):
        super().__init__()
        self.convnet = ConvNet(
            in_features=in_channels,
            depth=4,
            num_cells=32,
            kernel_sizes=3,
            strides=[2, 1, 1, 1],
            activation_class=nn.ReLU,
        )
        height, width = image_size
        self.out_features = 32 * ((height - 3) // 2 - 5) * ((width - 3) // 2 - 5)
        self.apply(_orthogonal_init)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        batch = pixels.shape[:-3]
        images = pixels.reshape(-1, *pixels.shape[-3:]).float() / 255.0 - 0.5
        return self.convnet(images).reshape(*batch, self.out_features)


def _trunk(in_features: int, feature_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


def _head(in_features: int, hidden_dim: int, out_features: int) -> MLP:
    return MLP(
        in_features=in_features,
        out_features=out_features,
        num_cells=[hidden_dim, hidden_dim],
        activation_class=nn.ReLU,
    )


class DrQv2Actor(nn.Module):
    """Trunk (Linear, LayerNorm, tanh) then a two-hidden-layer ReLU MLP; returns ``tanh(mu)``."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = _trunk(repr_dim, feature_dim)
        self.policy = _head(feature_dim, hidden_dim, action_dim)
        self.apply(_orthogonal_init)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.policy(self.trunk(features)))


class DrQv2Critic(nn.Module):
    """Twin Q-functions on one trunk: ``Q1, Q2`` of (trunk(features), action), stacked last."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = _trunk(repr_dim, feature_dim)
        self.q1 = _head(feature_dim + action_dim, hidden_dim, 1)
        self.q2 = _head(feature_dim + action_dim, hidden_dim, 1)
        self.apply(_orthogonal_init)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([self.trunk(features), action], dim=-1)
        return torch.cat([self.q1(inputs), self.q2(inputs)], dim=-1)


class DrQv2Exploration(AdditiveGaussianModule):
    """DrQ-v2's exploration: uniform actions first, then Gaussian noise of a scheduled std.

    TorchRL's :class:`~torchrl.modules.AdditiveGaussianModule` (noise ``N(0, std^2)``
    added to the action, projected into the action spec; nothing in
    ``ExplorationType.DETERMINISTIC``, i.e. evaluation plays the actor's mean), with the
    std set from the agent-step counter by :meth:`set_step`: :func:`linear_std` over
    ``duration`` steps, and uniformly random actions while ``step < uniform_steps``
    (DrQ-v2's ``num_expl_steps``). Its buffers (``sigma``, ``uniform``) travel with the
    policy's weights and checkpoints; :class:`~torchrl_psp.baselines.DrQv2Loss` reads the
    same ``sigma`` for its target-policy and actor noise.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from tensordict import TensorDict
        >>> from torchrl.envs.utils import set_exploration_type
        >>> explore = DrQv2Exploration(Bounded(-1, 1, (2,)), 1.0, 0.1, duration=100, uniform_steps=10)
        >>> explore.set_step(50)
        >>> round(float(explore.sigma), 4), bool(explore.uniform)
        (0.55, False)
        >>> with set_exploration_type(ExplorationType.DETERMINISTIC):
        ...     explore(TensorDict(action=torch.zeros(2)))["action"]
        tensor([0., 0.])
    """

    def __init__(
        self,
        spec: TensorSpec,
        std_init: float = 1.0,
        std_final: float = 0.1,
        duration: int = 500_000,
        uniform_steps: int = 2000,
        *,
        action_key: str = "action",
    ):
        super().__init__(spec, float(std_init), float(std_final), duration, action_key=action_key)
        self.uniform_steps = uniform_steps
        self.register_buffer("uniform", torch.tensor(uniform_steps > 0))

    def set_step(self, step: int) -> None:
        """The std and the uniform phase at agent step ``step``."""
        std = linear_std(
            step, float(self.sigma_init), float(self.sigma_end), self.annealing_num_steps
        )
        self.sigma.fill_(std)
        self.uniform.fill_(step < self.uniform_steps)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        mode = exploration_type()
        if bool(self.uniform) and (mode is ExplorationType.RANDOM or mode is None):
            action = tensordict.get(self.action_key)
            spec = self.spec[self.action_key]
            low, high = spec.space.low.to(action), spec.space.high.to(action)
            tensordict.set(self.action_key, low + (high - low) * torch.rand_like(action))
            return tensordict
        return super().forward(tensordict)


@dataclass
class DrQv2Agent:
    """DrQ-v2's modules (see :func:`make_drqv2`).

    Attributes:
        encoder: ``pixels_key`` -> ``"features"``.
        actor: ``"features"`` -> ``"action"`` (the deterministic policy ``tanh(mu)``).
        critic: (``"features"``, ``"action"``) -> ``"state_action_value"`` (``[..., 2]``:
            Q1, Q2).
        exploration: the acting noise (:class:`DrQv2Exploration`).
        policy: encoder -> actor -> exploration, writing only ``"action"``.
    """

    encoder: TensorDictModule
    actor: TensorDictModule
    critic: TensorDictModule
    exploration: DrQv2Exploration
    policy: TensorDictSequential


def make_drqv2(
    action_spec: TensorSpec,
    image_shape: tuple[int, int, int],
    *,
    feature_dim: int = 50,
    hidden_dim: int = 1024,
    std_init: float = 1.0,
    std_final: float = 0.1,
    std_schedule_steps: int = 500_000,
    uniform_steps: int = 2000,
    pixels_key: str = "stacked_pixels",
    device: torch.device | str = "cpu",
) -> DrQv2Agent:
    """DrQ-v2's encoder, actor, critic and exploration for ``(C, H, W)`` images.

    Args:
        action_spec: a bounded action spec (DMC: ``[-1, 1]``).
        image_shape: ``(C, H, W)`` of the (frame-stacked) observation.
        feature_dim: trunk output (DrQ-v2: 50; humanoid 100).
        hidden_dim: hidden units of the actor and critic MLPs (1024).
        std_init, std_final, std_schedule_steps: the exploration std schedule.
        uniform_steps: agent steps of uniformly random actions (``num_expl_steps``).
        pixels_key: the observation entry the encoder reads.
        device: where the modules live.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from tensordict import TensorDict
        >>> agent = make_drqv2(Bounded(-1, 1, (2,)), (9, 64, 64), hidden_dim=32)
        >>> td = agent.policy(TensorDict(stacked_pixels=torch.zeros(4, 9, 64, 64, dtype=torch.uint8), batch_size=[4]))
        >>> td["action"].shape, sorted(td.keys())
        (torch.Size([4, 2]), ['action', 'stacked_pixels'])
    """
    if not isinstance(action_spec, Bounded):
        raise ValueError(f"DrQ-v2 needs a Bounded action spec, got {type(action_spec).__name__}.")
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}.")
    channels, height, width = image_shape
    if min(height, width) < 15:
        raise ValueError(f"DrQ-v2's encoder needs images of at least 15x15, got {height}x{width}.")
    action_dim = action_spec.shape[-1]
    encoder_net = DrQv2Encoder(channels, (height, width))
    repr_dim = encoder_net.out_features
    encoder = TensorDictModule(encoder_net, in_keys=[pixels_key], out_keys=["features"])
    actor = TensorDictModule(
        DrQv2Actor(repr_dim, action_dim, feature_dim, hidden_dim),
        in_keys=["features"],
        out_keys=["action"],
    )
    critic = TensorDictModule(
        DrQv2Critic(repr_dim, action_dim, feature_dim, hidden_dim),
        in_keys=["features", "action"],
        out_keys=["state_action_value"],
    )
    exploration = DrQv2Exploration(
        action_spec.to(device), std_init, std_final, std_schedule_steps, uniform_steps
    )
    for module in (encoder, actor, critic, exploration):
        module.to(device)
    policy = TensorDictSequential(encoder, actor, exploration, selected_out_keys=["action"])
    return DrQv2Agent(encoder, actor, critic, exploration, policy)
