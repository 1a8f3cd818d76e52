"""DreamerV3's continuous actor network and the acting-state carry of the policy."""

from __future__ import annotations

import torch
from torch import nn

from torchrl_psp.modules.mlp import NormSiLUMLP

__all__ = ["ActionClamp", "BoundedNormalActorNet", "PolicyCarry"]


class BoundedNormalActorNet(nn.Module):
    """DreamerV3's continuous actor: ``loc = tanh(mean)``, ``scale`` in ``[min_std, max_std]``.

    With a Normal distribution, ``loc`` is the policy mean ``E[pi(s)]`` that PSP's
    saliency differentiates; samples are clipped to the action bounds by the
    environment, as in DreamerV3.

    Args:
        in_features: width of the latent features.
        action_dim: width of the action.
        depth: hidden layers.
        num_cells: hidden width.
        min_std: lower bound of the standard deviation.
        max_std: upper bound of the standard deviation.
        norm_eps: RMS normalisation epsilon.

    Examples:
        >>> net = BoundedNormalActorNet(6, 2, depth=1, num_cells=8)
        >>> loc, scale = net(torch.randn(3, 4), torch.randn(3, 2))
        >>> bool((loc.abs() < 1).all()), bool(((scale >= 0.1) & (scale <= 1.0)).all())
        (True, True)
    """

    def __init__(
        self,
        in_features: int,
        action_dim: int,
        *,
        depth: int = 3,
        num_cells: int = 256,
        min_std: float = 0.1,
        max_std: float = 1.0,
        norm_eps: float = 1e-4,
    ):
        super().__init__()
        self.backbone = NormSiLUMLP(
            in_features, None, depth=depth, num_cells=num_cells, norm_eps=norm_eps
        )
        self.mean_head = nn.Linear(num_cells, action_dim)
        self.std_head = nn.Linear(num_cells, action_dim)
        for head in (self.mean_head, self.std_head):
            nn.init.trunc_normal_(head.weight, std=0.01 / num_cells**0.5)
            nn.init.zeros_(head.bias)
        self.min_std = min_std
        self.max_std = max_std

    def forward(
        self, state: torch.Tensor, belief: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.backbone(state, belief)
        loc = self.mean_head(hidden).tanh()
        scale = (self.max_std - self.min_std) * torch.sigmoid(self.std_head(hidden) + 2.0)
        return loc.float(), (scale + self.min_std).float()


class ActionClamp(nn.Module):
    """Clamps actions to the bounds of the action spec: the action the environment executes.

    DreamerV3's Normal actor samples beyond the bounds, and MuJoCo clamps the control.
    The agent clamps where an action enters the world model (the acting policy's stored
    action and the imagination's transitions), so that the model never learns, nor is
    asked about, actions the environment cannot execute; REINFORCE still scores the
    unclamped sample.

    Args:
        low: lower bounds (broadcast against the action).
        high: upper bounds.

    Examples:
        >>> clamp = ActionClamp(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 2.0]))
        >>> clamp(torch.tensor([[-3.0, 0.5], [0.2, 5.0]]))
        tensor([[-1.0000,  0.5000],
                [ 0.2000,  2.0000]])
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor):
        super().__init__()
        low, high = (
            torch.as_tensor(low, dtype=torch.float32),
            torch.as_tensor(high, dtype=torch.float32),
        )
        if low.shape != high.shape or bool((low > high).any()):
            raise ValueError(
                f"ActionClamp needs low <= high of one shape, got {low.tolist()} and {high.tolist()}."
            )
        self.register_buffer("low", low)
        self.register_buffer("high", high)

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return action.clamp(self.low, self.high)


class PolicyCarry(nn.Module):
    """Copies the acting state and action to ``next`` so that ``step_mdp`` carries them.

    The last module of :attr:`~torchrl_psp.modules.DreamerV3Agent.policy`: the
    posterior state, belief and action of step ``t`` become the ``"state"``,
    ``"belief"`` and ``"previous_action"`` inputs of step ``t + 1``.

    Examples:
        >>> state, belief, action = PolicyCarry()(torch.ones(2), torch.zeros(3), torch.ones(1))
        >>> action.dtype
        torch.float32
    """

    def forward(
        self, state: torch.Tensor, belief: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return state, belief, action.float()
