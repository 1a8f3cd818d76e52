"""The reafferent background of PSP §3.2: a learnable but useless, self-caused distractor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase

from torchrl_psp.envs.background import BackgroundTransform

__all__ = ["ReafferentBackground", "reafferent_grids"]


def reafferent_grids(
    seed: int = 0, num_time_steps: int = 625, num_action_bins: int = 4, grid_size: int = 16
) -> torch.Tensor:
    """The fixed random colour grids of the reafferent background.

    Drawn with NumPy's PCG64 generator (``numpy.random.default_rng(seed)``), whose stream
    is the same on every machine, so a seed names one environment everywhere.

    Returns:
        ``uint8`` ``(num_time_steps, num_action_bins, grid_size, grid_size, 3)``.

    Examples:
        >>> grids = reafferent_grids()
        >>> grids.shape, grids.dtype
        (torch.Size([625, 4, 16, 16, 3]), torch.uint8)
    """
    rng = np.random.default_rng(seed)
    grids = rng.integers(
        0, 256, size=(num_time_steps, num_action_bins, grid_size, grid_size, 3), dtype=np.uint8
    )
    return torch.from_numpy(grids)


class ReafferentBackground(BackgroundTransform):
    """Background that depends only on the elapsed step and the previous action (PSP §3.2).

    The background of the frame at step ``t`` is the grid
    ``grids[t mod num_time_steps, bin(a_{t-1}[0])]``, upsampled (nearest) to the image,
    where ``bin`` splits the range of the first action dimension into ``num_action_bins``
    equal-width bins and ``a_{-1} = 0`` at reset. With the defaults, 2,500 fixed 16x16 RGB
    grids: the world model can learn to predict it perfectly, but it is useless to the
    policy. The grids are fixed by ``seed`` (not by the env's seed): every run of the
    same ``seed`` sees the same environment.

    The state entry ``state_key`` holds ``[t, bin(a_{t-1})]`` (``int64``, shape
    ``(*batch, 2)``).

    Args:
        seed: seed of the grids. Defaults to 0.
        num_time_steps: period of the time index. Defaults to 625.
        num_action_bins: bins of the first action dimension. Defaults to 4.
        grid_size: side of each colour grid. Defaults to 16.
        action_low, action_high: range of the first action dimension; ``None`` reads it
            from the parent's action spec.
        action_key: the action entry. Defaults to ``"action"``.
        state_key: the state entry. Defaults to ``"reafferent_state"``.
        compositing, replace_floor, ground_plane_alpha, pixels_key, camera_id: see
            :class:`~torchrl_psp.envs.BackgroundTransform`.

    Examples:
        >>> from dm_control import suite
        >>> from torchrl.envs import DMControlWrapper, TransformedEnv
        >>> base = DMControlWrapper(
        ...     suite.load("cheetah", "run"), from_pixels=True, pixels_only=True,
        ...     render_kwargs={"height": 64, "width": 64, "camera_id": 0},
        ... )
        >>> env = TransformedEnv(base, ReafferentBackground())
        >>> td = env.rollout(3)
        >>> td["next", "reafferent_state"][:, 0].tolist()  # the elapsed steps
        [1, 2, 3]
        >>> transform = env.transform
        >>> image = transform.background_image(step=0, previous_action=0.0, height=64, width=64)
        >>> image.shape
        torch.Size([64, 64, 3])
    """

    def __init__(
        self,
        seed: int = 0,
        num_time_steps: int = 625,
        num_action_bins: int = 4,
        grid_size: int = 16,
        action_low: float | None = None,
        action_high: float | None = None,
        action_key: str = "action",
        state_key: str = "reafferent_state",
        *,
        compositing: str = "segmentation",
        replace_floor: bool = False,
        ground_plane_alpha: float = 0.3,
        pixels_key: str = "pixels",
        camera_id: int | None = None,
    ):
        super().__init__(
            state_key,
            2,
            compositing=compositing,
            replace_floor=replace_floor,
            ground_plane_alpha=ground_plane_alpha,
            pixels_key=pixels_key,
            camera_id=camera_id,
        )
        if num_time_steps < 1 or num_action_bins < 1 or grid_size < 1:
            raise ValueError("num_time_steps, num_action_bins and grid_size must be positive.")
        if (action_low is None) != (action_high is None):
            raise ValueError("Pass both action_low and action_high, or neither.")
        if action_low is not None and not action_high > action_low:
            raise ValueError(f"action_high ({action_high}) must exceed action_low ({action_low}).")
        self.seed = seed
        self.num_time_steps = num_time_steps
        self.num_action_bins = num_action_bins
        self.grid_size = grid_size
        self.action_key = action_key
        self._action_range = None if action_low is None else (float(action_low), float(action_high))
        self.register_buffer(
            "grids",
            reafferent_grids(seed, num_time_steps, num_action_bins, grid_size),
            persistent=False,
        )

    @property
    def action_range(self) -> tuple[float, float]:
        """``(low, high)`` of the first action dimension."""
        if self._action_range is None:
            parent = self.parent
            if parent is None:
                raise ValueError(
                    "ReafferentBackground needs action_low/action_high or a parent env whose "
                    "action spec gives the action range."
                )
            spec = parent.full_action_spec[self.action_key]
            low = spec.space.low.reshape(-1)[0].item()
            high = spec.space.high.reshape(-1)[0].item()
            self._action_range = (float(low), float(high))
        return self._action_range

    def action_bin(self, action: torch.Tensor | float) -> torch.Tensor:
        """Bin of the first action dimension: ``floor((a - low) / (high - low) * bins)``.

        The upper edge belongs to the last bin; out-of-range actions are clamped.
        """
        action = torch.as_tensor(action, dtype=torch.float64)
        first = action if action.ndim == 0 else action[..., 0]
        low, high = self.action_range
        index = torch.floor((first - low) / (high - low) * self.num_action_bins)
        return index.clamp(0, self.num_action_bins - 1).to(torch.int64)

    def initial_state(self, batch_shape: torch.Size) -> torch.Tensor:
        zero_bin = self.action_bin(0.0)
        state = torch.stack([torch.zeros((), dtype=torch.int64), zero_bin])
        return state.expand(*batch_shape, 2).clone()

    def next_state(self, state: torch.Tensor, tensordict: TensorDictBase) -> torch.Tensor:
        action = tensordict.get(self.action_key)
        return torch.stack([state[..., 0] + 1, self.action_bin(action)], -1)

    def background(self, state: torch.Tensor, height: int, width: int) -> torch.Tensor:
        grids = self.grids[state[..., 0] % self.num_time_steps, state[..., 1]]
        rows = torch.arange(height) * self.grid_size // height
        cols = torch.arange(width) * self.grid_size // width
        return grids[..., rows[:, None], cols[None, :], :]

    def background_image(
        self, step: int, previous_action: Any, height: int = 64, width: int = 64
    ) -> torch.Tensor:
        """The background at ``step`` after ``previous_action``: a pure function of both."""
        state = torch.stack(
            [torch.as_tensor(step, dtype=torch.int64), self.action_bin(previous_action)]
        )
        return self.background(state, height, width)
