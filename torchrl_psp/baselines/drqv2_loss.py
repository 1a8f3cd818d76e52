"""DrQ-v2's objective: the n-step twin-critic loss and the actor loss, as a TorchRL ``LossModule``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torchrl.data import Bounded
from torchrl.envs import Transform
from torchrl.objectives import LossModule
from torchrl.objectives.utils import ValueEstimators, distance_loss
from torchrl.objectives.value import TD0Estimator

from torchrl_psp.baselines.random_shift import RandomShift

__all__ = ["DrQv2Loss"]

#: Action samples are clamped this far inside the bounds (DrQ-v2's truncated normal).
_BOUND_EPS = 1e-6


def _clamp_straight_through(action: torch.Tensor, low: torch.Tensor, high: torch.Tensor):
    """Clamped values with an identity gradient (DrQ-v2's truncated-normal sample)."""
    clamped = action.clamp(low + _BOUND_EPS, high - _BOUND_EPS)
    return action + (clamped - action).detach()


class DrQv2Loss(LossModule):
    """DrQ-v2's critic and actor losses (Yarats et al. 2021).

    Per update, with ``std`` the exploration module's current std (the schedule) and
    ``eps ~ clip(N(0, std^2), -std_clip, std_clip)``:

    * both observations are augmented (``augmentation``, independent random shifts)
      and encoded; the encoder's gradient comes from the critic loss only;
    * critic: ``y = R_n + gamma^n (1 - terminated) min_i Q'_i(f', clamp(mu(f') + eps))``
      with the target critic ``Q'`` (a soft-updated copy: use
      :class:`~torchrl.objectives.SoftUpdate`) and TorchRL's TD(0) estimator reading
      ``steps_to_next_obs`` (the n-step sum ``R_n`` is in ``("next", "reward")``, see
      :func:`~torchrl_psp.baselines.drqv2_nstep.nstep_transitions`); ``loss_critic = mean (Q1 - y)^2 + mean (Q2 - y)^2``;
    * actor: ``loss_actor = -mean min_i Q_i(sg(f), clamp(mu(sg(f)) + eps))`` with the
      critic's parameters detached (the actor loss trains the actor only).

    The clamp keeps samples inside the action bounds with an identity gradient, as
    DrQ-v2's truncated normal does. Both losses come from one forward pass and one
    backward pass (TorchRL's convention, as :class:`~torchrl.objectives.TD3Loss`); the
    official code steps the critic before computing the actor loss.

    Args:
        encoder: ``pixels`` -> ``"features"`` (:func:`~torchrl_psp.baselines.make_drqv2`).
        actor: ``"features"`` -> ``"action"`` (deterministic ``tanh(mu)``).
        critic: (``"features"``, ``"action"``) -> ``"state_action_value"`` ``[..., 2]``.
        exploration: a module with a ``sigma`` buffer (the scheduled std), e.g.
            :class:`~torchrl_psp.baselines.DrQv2Exploration`; or a float, a constant std.
        action_spec: the bounded action spec.
        std_clip: clip of the noise (0.3).
        gamma: discount (0.99).
        augmentation: applied to the observation and the next observation;
            ``None``: none. Default :class:`~torchrl_psp.baselines.RandomShift` (pad 4).

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl.objectives import SoftUpdate
        >>> from torchrl_psp.baselines import make_drqv2
        >>> agent = make_drqv2(Bounded(-1, 1, (1,)), (3, 16, 16), hidden_dim=8)
        >>> loss = DrQv2Loss(agent.encoder, agent.actor, agent.critic, agent.exploration,
        ...                  action_spec=Bounded(-1, 1, (1,)))
        >>> updater = SoftUpdate(loss, tau=0.01)
        >>> batch = TensorDict({
        ...     "stacked_pixels": torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
        ...     ("next", "stacked_pixels"): torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
        ...     "action": torch.zeros(4, 1), "steps_to_next_obs": torch.full((4, 1), 3),
        ...     ("next", "reward"): torch.ones(4, 1),
        ...     ("next", "done"): torch.zeros(4, 1, dtype=torch.bool),
        ...     ("next", "terminated"): torch.zeros(4, 1, dtype=torch.bool)}, [4])
        >>> out = loss(batch)
        >>> sorted(k for k in out.keys() if k.startswith("loss_"))
        ['loss_actor', 'loss_critic']
        >>> (out["loss_actor"] + out["loss_critic"]).backward(); updater.step()
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable tensordict keys (``loss.set_keys(name=key)``).

        Attributes:
            pixels: the (stacked) image observation; also read under ``"next"``.
                Defaults to ``"stacked_pixels"``.
            features: the encoder's output. Defaults to ``"features"``.
            action: the action. Defaults to ``"action"``.
            state_action_value: the critic's output. Defaults to ``"state_action_value"``.
            reward: the (n-step) reward, under ``"next"``. Defaults to ``"reward"``.
            done: under ``"next"``. Defaults to ``"done"``.
            terminated: under ``"next"``. Defaults to ``"terminated"``.
            steps_to_next_obs: steps between the observation and the bootstrap
                observation. Defaults to ``"steps_to_next_obs"``.
        """

        pixels: NestedKey = "stacked_pixels"
        features: NestedKey = "features"
        action: NestedKey = "action"
        state_action_value: NestedKey = "state_action_value"
        reward: NestedKey = "reward"
        done: NestedKey = "done"
        terminated: NestedKey = "terminated"
        steps_to_next_obs: NestedKey = "steps_to_next_obs"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    default_value_estimator = ValueEstimators.TD0

    critic: TensorDictModule
    critic_params: TensorDictParams
    target_critic_params: TensorDictParams

    def __init__(
        self,
        encoder: TensorDictModule,
        actor: TensorDictModule,
        critic: TensorDictModule,
        exploration: torch.nn.Module | float,
        *,
        action_spec: Bounded,
        std_clip: float = 0.3,
        gamma: float = 0.99,
        augmentation: Transform | None | str = "default",
    ):
        super().__init__()
        self.encoder = encoder
        self.actor = actor
        self.convert_to_functional(critic, "critic", create_target_params=True)
        if isinstance(exploration, torch.nn.Module):
            self.exploration = exploration
        else:
            self.exploration = None
            self.register_buffer("_constant_std", torch.tensor(float(exploration)))
        self.std_clip = std_clip
        self.gamma = gamma
        self.augmentation = RandomShift(4) if augmentation == "default" else augmentation
        self.register_buffer("action_low", action_spec.space.low.clone())
        self.register_buffer("action_high", action_spec.space.high.clone())
        self.make_value_estimator(gamma=gamma)

    # -- keys ------------------------------------------------------------------------------
    def make_value_estimator(self, value_type: ValueEstimators | None = None, **hyperparams):
        value_type = self.default_value_estimator if value_type is None else value_type
        if value_type is not ValueEstimators.TD0:
            raise NotImplementedError(f"DrQv2Loss bootstraps with TD(0) only, got {value_type}.")
        self._value_estimator = TD0Estimator(
            value_network=None, **{"gamma": self.gamma, **hyperparams}
        )
        self._forward_value_estimator_keys()

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        if getattr(self, "_value_estimator", None) is not None:
            self._value_estimator.set_keys(
                value=self.tensor_keys.state_action_value,
                reward=self.tensor_keys.reward,
                done=self.tensor_keys.done,
                terminated=self.tensor_keys.terminated,
                steps_to_next_obs=self.tensor_keys.steps_to_next_obs,
            )

    @property
    def in_keys(self) -> list[NestedKey]:
        keys = self.tensor_keys
        return [
            keys.pixels,
            ("next", keys.pixels),
            keys.action,
            ("next", keys.reward),
            ("next", keys.done),
            ("next", keys.terminated),
            keys.steps_to_next_obs,
        ]

    @property
    def std(self) -> torch.Tensor:
        """The current exploration std (the exploration module's ``sigma``)."""
        return self._constant_std if self.exploration is None else self.exploration.sigma

    # -- the losses ------------------------------------------------------------------------
    def _noisy(self, mean: torch.Tensor) -> torch.Tensor:
        noise = (torch.randn_like(mean) * self.std).clamp(-self.std_clip, self.std_clip)
        return _clamp_straight_through(mean + noise, self.action_low, self.action_high)

    def _critic(self, features: torch.Tensor, action: torch.Tensor, params) -> torch.Tensor:
        data = TensorDict(
            {self.critic.in_keys[0]: features, self.critic.in_keys[1]: action},
            batch_size=features.shape[:-1],
        )
        with params.to_module(self.critic):
            return self.critic(data).get(self.critic.out_keys[0])

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        key = self.encoder.in_keys[0]
        data = TensorDict({key: pixels}, batch_size=pixels.shape[:-3])
        return self.encoder(data).get(self.encoder.out_keys[0])

    def _actor(self, features: torch.Tensor) -> torch.Tensor:
        data = TensorDict({self.actor.in_keys[0]: features}, batch_size=features.shape[:-1])
        return self.actor(data).get(self.actor.out_keys[0])

    def _augmented(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        keys = self.tensor_keys
        pixels = [tensordict.get(keys.pixels), tensordict.get(("next", keys.pixels))]
        for key, value in zip((keys.pixels, ("next", keys.pixels)), pixels):
            if value is None:
                raise ValueError(f"DrQv2Loss reads {key!r}, which the batch lacks.")
            if value.ndim < 4:
                raise ValueError(f"{key!r} must be [B, C, H, W] images, got {tuple(value.shape)}.")
        if self.augmentation is not None:
            pixels = [self.augmentation._apply_transform(p) for p in pixels]
        return pixels[0], pixels[1]

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        keys = self.tensor_keys
        obs, next_obs = self._augmented(tensordict)
        features = self._encode(obs)
        with torch.no_grad():
            next_features = self._encode(next_obs)
            next_action = self._noisy(self._actor(next_features))
            target_q = self._critic(next_features, next_action, self.target_critic_params)
            next_value = target_q.min(-1, keepdim=True).values
            target = self._value_estimator.value_estimate(
                tensordict.select(
                    ("next", keys.reward),
                    ("next", keys.done),
                    ("next", keys.terminated),
                    keys.steps_to_next_obs,
                    strict=False,
                ),
                next_value=next_value,
            )
        q = self._critic(features, tensordict.get(keys.action), self.critic_params)
        loss_critic = distance_loss(q, target.expand_as(q), "l2").mean(0).sum()

        actor_features = features.detach()
        action = self._noisy(self._actor(actor_features))
        q_actor = self._critic(actor_features, action, self.critic_params.detach())
        loss_actor = -q_actor.min(-1).values.mean()
        return TensorDict(
            {
                "loss_critic": loss_critic,
                "loss_actor": loss_actor,
                "critic_q1": q[..., 0].mean().detach(),
                "critic_q2": q[..., 1].mean().detach(),
                "critic_target_q": target.mean().detach(),
                "actor_q": q_actor.min(-1).values.mean().detach(),
                "exploration_std": self.std.detach().clone(),
            },
            batch_size=[],
        )
