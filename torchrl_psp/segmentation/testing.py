"""A tiny pixel environment for tests and examples of the segmentation transforms.

TorchRL's mock pixel envs produce float, channels-first images; the transforms of this
package read DeepMind Control's uint8 channels-last ``"pixels"``. This env renders a
coloured square ("the agent", moved by a 2-D action) over a textured background that
changes every step (a distractor), with its ground-truth ``"task_mask"`` when asked.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs import EnvBase

from torchrl_psp.keys import PIXELS_KEY, TASK_MASK_KEY, task_mask_spec

__all__ = ["SyntheticPixelEnv"]

AGENT_COLOR = (230, 120, 40)


class SyntheticPixelEnv(EnvBase):
    """Renders uint8 ``(*batch, size, size, 3)`` frames of a square moved by the action.

    Args:
        size: frame side in pixels.
        batch_size: env batch size.
        with_task_mask: also write the square's ground-truth ``"task_mask"``.
        static: keep the background fixed (frames repeat when the square does not move).
        seed: seed of the background textures.
        device: device of the outputs.

    Examples:
        >>> env = SyntheticPixelEnv(size=16, with_task_mask=True)
        >>> td = env.reset()
        >>> td["pixels"].shape, td["pixels"].dtype, td["task_mask"].dtype
        (torch.Size([16, 16, 3]), torch.uint8, torch.bool)
    """

    def __init__(
        self,
        size: int = 32,
        batch_size: tuple[int, ...] = (),
        with_task_mask: bool = False,
        static: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ):
        super().__init__(batch_size=torch.Size(batch_size), device=device)
        self.size = size
        self.with_task_mask = with_task_mask
        self.static = static
        self.side = max(2, size // 4)
        shape = (*self.batch_size, size, size, 3)
        spec = Composite(
            {
                PIXELS_KEY: Bounded(0, 255, shape, dtype=torch.uint8, device=self.device),
                "position": Unbounded((*self.batch_size, 2), device=self.device),
                "step_count": Unbounded(
                    (*self.batch_size, 1), dtype=torch.int64, device=self.device
                ),
            },
            shape=self.batch_size,
            device=self.device,
        )
        if with_task_mask:
            spec[TASK_MASK_KEY] = task_mask_spec(shape[:-1], device=self.device)
        self.observation_spec = spec
        self.action_spec = Bounded(-1, 1, (*self.batch_size, 2), device=self.device)
        self.reward_spec = Unbounded((*self.batch_size, 1), device=self.device)
        self._set_seed(seed)

    def _set_seed(self, seed: int | None) -> None:
        generator = torch.Generator().manual_seed(int(seed or 0))
        self._textures = torch.randint(
            0, 256, (8, 8, 8, 3), generator=generator, dtype=torch.uint8
        ).to(self.device)

    def _render(self, position: torch.Tensor, step: torch.Tensor) -> dict[str, torch.Tensor]:
        size, side = self.size, self.side
        index = torch.zeros_like(step) if self.static else step % self._textures.shape[0]
        texture = self._textures[index.reshape(-1)].reshape(*step.shape[:-1], 8, 8, 3)
        repeat = -(-size // 8)
        pixels = texture.repeat_interleave(repeat, -3).repeat_interleave(repeat, -2)
        pixels = pixels[..., :size, :size, :].clone()
        coords = torch.arange(size, device=self.device)
        corner = position.round().long()
        inside_x = (coords >= corner[..., :1]) & (coords < corner[..., :1] + side)
        inside_y = (coords >= corner[..., 1:]) & (coords < corner[..., 1:] + side)
        mask = inside_y.unsqueeze(-1) & inside_x.unsqueeze(-2)
        pixels[mask] = torch.tensor(AGENT_COLOR, dtype=torch.uint8, device=self.device)
        out = {PIXELS_KEY: pixels}
        if self.with_task_mask:
            out[TASK_MASK_KEY] = mask
        return out

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        centre = (self.size - self.side) / 2
        position = torch.full((*self.batch_size, 2), centre, device=self.device)
        step = torch.zeros((*self.batch_size, 1), dtype=torch.int64, device=self.device)
        return TensorDict(
            {"position": position, "step_count": step, **self._render(position, step)},
            batch_size=self.batch_size,
            device=self.device,
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        position = tensordict["position"] + 2 * tensordict["action"].clamp(-1, 1)
        position = position.clamp(0, self.size - self.side)
        step = tensordict["step_count"] + 1
        return TensorDict(
            {
                "position": position,
                "step_count": step,
                "reward": -(position - self.size / 2).norm(dim=-1, keepdim=True),
                "done": torch.zeros_like(step, dtype=torch.bool),
                **self._render(position, step),
            },
            batch_size=self.batch_size,
            device=self.device,
        )
