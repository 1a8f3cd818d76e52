"""n-step transitions from replayed windows of single frames, and DrQ-v2's loss on such windows."""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey
from torchrl.objectives import LossModule

from torchrl_psp.baselines.drqv2_loss import DrQv2Loss

__all__ = ["DrQv2WindowLoss", "nstep_transitions"]


def nstep_transitions(
    window: TensorDictBase,
    *,
    n_step: int,
    frame_stack: int,
    gamma: float,
    pixels_key: NestedKey = "pixels",
    stacked_key: NestedKey = "stacked_pixels",
) -> TensorDict:
    """n-step transitions with stacked frames from replayed windows of consecutive steps.

    A window ``[B, L]`` (``L = frame_stack + n_step - 1`` consecutive steps of one
    trajectory, e.g. from :class:`~torchrl_psp.training.SequenceReplay`) gives the
    transition of its step ``t = frame_stack - 1``:

    * ``stacked_key``: frames ``t - frame_stack + 1 .. t`` along the channels
      (``pixels_key`` of the first ``frame_stack`` steps);
    * ``("next", stacked_key)``: the stack at ``t + n_step`` (``("next", pixels_key)`` of
      the last ``frame_stack`` steps);
    * ``"action"``: the action at ``t``;
    * ``("next", "reward")``: ``sum_k gamma^k r_{t+k}``, ``k < n_step``;
    * ``("next", "done" | "terminated")``: those of the window's last step, and
      ``"steps_to_next_obs"`` = ``n_step`` (TorchRL's multi-step convention: the TD(0)
      estimator bootstraps with ``gamma ** steps_to_next_obs``).

    Only the last step of a window may end an episode. (TorchRL's
    :class:`~torchrl.data.postprocs.MultiStep` keeps the first step's done flags; the
    bootstrap must read the last step's.)

    Raises:
        ValueError: a window of the wrong length, or an episode ending before its last step.

    Examples:
        >>> window = TensorDict({
        ...     "pixels": torch.arange(3.0).view(1, 3, 1, 1, 1).expand(1, 3, 1, 2, 2),
        ...     "action": torch.tensor([[[0.5], [0.6], [0.7]]]),
        ...     ("next", "pixels"): torch.arange(1.0, 4.0).view(1, 3, 1, 1, 1).expand(1, 3, 1, 2, 2),
        ...     ("next", "reward"): torch.tensor([[[1.0], [2.0], [4.0]]]),
        ...     ("next", "done"): torch.zeros(1, 3, 1, dtype=torch.bool),
        ...     ("next", "terminated"): torch.zeros(1, 3, 1, dtype=torch.bool),
        ... }, [1, 3])
        >>> out = nstep_transitions(window, n_step=2, frame_stack=2, gamma=0.5)
        >>> out["stacked_pixels"][0, :, 0, 0], out["next", "stacked_pixels"][0, :, 0, 0]
        (tensor([0., 1.]), tensor([2., 3.]))
        >>> out["action"], out["next", "reward"], out["steps_to_next_obs"]  # 2 + 0.5 * 4
        (tensor([[0.6000]]), tensor([[4.]]), tensor([[2]]))
    """
    length = n_step + frame_stack - 1
    if window.ndim != 2 or window.shape[1] != length:
        raise ValueError(
            f"nstep_transitions needs windows [B, {length}] (n_step={n_step} + frame_stack="
            f"{frame_stack} - 1), got batch shape {tuple(window.shape)}."
        )
    done = window.get(("next", "done")).reshape(window.shape)
    if done[:, :-1].any():
        raise ValueError(
            "('next', 'done') is set before the last step of a window: windows must not cross "
            "episodes (SequenceReplay's never do)."
        )
    t = frame_stack - 1

    def stack(frames: torch.Tensor) -> torch.Tensor:  # [B, k, C, H, W] -> [B, k * C, H, W]
        return frames.flatten(1, 2)

    rewards = window.get(("next", "reward"))[:, t:]
    discounts = gamma ** torch.arange(n_step, dtype=rewards.dtype, device=rewards.device)
    reward = (rewards * discounts.view(1, n_step, *[1] * (rewards.ndim - 2))).sum(1)
    last = window[:, -1]
    out = TensorDict(
        {
            stacked_key: stack(window.get(pixels_key)[:, :frame_stack]),
            "action": window.get("action")[:, t],
            "steps_to_next_obs": torch.full_like(reward, n_step, dtype=torch.long),
            ("next", stacked_key): stack(window.get(("next", pixels_key))[:, n_step - 1 :]),
            ("next", "reward"): reward,
            ("next", "done"): last.get(("next", "done")),
            ("next", "terminated"): last.get(("next", "terminated")),
        },
        batch_size=window.shape[:1],
        device=window.device,
    )
    return out


class DrQv2WindowLoss(LossModule):
    """:class:`DrQv2Loss` on replayed windows: :func:`nstep_transitions`, then the loss.

    Its :attr:`in_keys` are what a replay of single steps stores (``pixels_key`` and
    ``("next", pixels_key)`` unstacked, action, reward, done, terminated), so that the
    replay holds each frame twice, not ``2 * frame_stack`` times.

    Args:
        loss: the :class:`DrQv2Loss` (its ``pixels`` key names the stacked entry).
        n_step: steps of the TD target (3).
        frame_stack: frames per observation (3).
        pixels_key: the single-frame image entry of the replay.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.baselines import make_drqv2
        >>> agent = make_drqv2(Bounded(-1, 1, (1,)), (6, 16, 16), hidden_dim=8)
        >>> loss = DrQv2Loss(agent.encoder, agent.actor, agent.critic, 0.2,
        ...                  action_spec=Bounded(-1, 1, (1,)))
        >>> windows = DrQv2WindowLoss(loss, n_step=3, frame_stack=2)
        >>> windows.in_keys[:2]
        ['pixels', ('next', 'pixels')]
    """

    def __init__(
        self, loss: DrQv2Loss, n_step: int = 3, frame_stack: int = 3, pixels_key: str = "pixels"
    ):
        super().__init__()
        self.loss = loss
        self.n_step = n_step
        self.frame_stack = frame_stack
        self.pixels_key = pixels_key

    @property
    def window(self) -> int:
        """Steps per replayed window."""
        return self.n_step + self.frame_stack - 1

    @property
    def in_keys(self) -> list[NestedKey]:
        keys = self.loss.tensor_keys
        return [
            self.pixels_key,
            ("next", self.pixels_key),
            keys.action,
            ("next", keys.reward),
            ("next", keys.done),
            ("next", keys.terminated),
        ]

    def forward(self, window: TensorDictBase) -> TensorDict:
        transitions = nstep_transitions(
            window,
            n_step=self.n_step,
            frame_stack=self.frame_stack,
            gamma=self.loss.gamma,
            pixels_key=self.pixels_key,
            stacked_key=self.loss.tensor_keys.pixels,
        )
        return self.loss(transitions)
