"""Pixel observations rendered from the MuJoCo physics once per environment step."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.data import Bounded, Composite

from torchrl_psp.envs._base import PhysicsTransform
from torchrl_psp.envs._physics import set_fast_rendering, stack_renders
from torchrl_psp.keys import PIXELS_KEY

__all__ = ["MujocoPixels"]


class MujocoPixels(PhysicsTransform):
    """Adds a pixel observation rendered from the parent's MuJoCo physics.

    Unlike ``DMControlWrapper(..., from_pixels=True, frame_skip=k)``, which renders after
    each of the ``k`` repeated physics steps, this transform renders once per environment
    step, after the last one, with a camera that is kept between steps. With
    ``fast=True`` it also sets MuJoCo's shadow map to 256 pixels and turns off
    multisampling (see :func:`~torchrl_psp.envs.set_fast_rendering`), which makes a
    software-rendered 64x64 frame several times cheaper with almost the same picture
    (numbers in the docs).

    Args:
        image_size: ``(height, width)`` or an int. Defaults to 64.
        camera_id: MuJoCo camera. Defaults to 0 (DeepMind Control's tracking camera;
            quadruped uses 2).
        fast: apply the fast rendering settings. Defaults to ``True``.
        out_key: where the image is written. Defaults to ``"pixels"``.

    The image is ``uint8`` of shape ``(*batch, H, W, 3)``.

    Examples:
        >>> from dm_control import suite
        >>> from torchrl.envs import DMControlWrapper, TransformedEnv
        >>> env = TransformedEnv(
        ...     DMControlWrapper(suite.load("cartpole", "swingup")), MujocoPixels(image_size=64)
        ... )
        >>> td = env.rollout(3)
        >>> td["next", "pixels"].shape, td["next", "pixels"].dtype
        (torch.Size([3, 64, 64, 3]), torch.uint8)
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 64,
        camera_id: int = 0,
        fast: bool = True,
        out_key: str = PIXELS_KEY,
    ):
        super().__init__(in_keys=[], out_keys=[out_key], image_size=image_size, camera_id=camera_id)
        self.fast = fast
        self.__dict__["_configured"] = False

    def set_container(self, container) -> None:
        self.__dict__["_configured"] = False
        super().set_container(container)

    def camera_for(self, pixels_key: str) -> int | None:
        """:attr:`camera_id` for this transform's ``out_key``, ``None`` for other entries."""
        return self.camera_id if pixels_key == self.out_keys[0] else None

    def _render(self, batch_shape: torch.Size) -> torch.Tensor:
        renderers = self.renderers()
        if self.fast and not self.__dict__["_configured"]:
            for renderer in renderers:
                set_fast_rendering(renderer.physics)
            self.__dict__["_configured"] = True
        height, width = self.image_size()
        images = [r.rgb(height, width, self.camera_id) for r in renderers]
        return stack_renders(images, batch_shape)

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        next_tensordict.set(self.out_keys[0], self._render(next_tensordict.batch_size))
        return next_tensordict

    def _reset(
        self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase
    ) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        height, width = self.image_size()
        observation_spec[self.out_keys[0]] = Bounded(
            low=0,
            high=255,
            shape=(*observation_spec.shape, height, width, 3),
            dtype=torch.uint8,
            device=observation_spec.device,
        )
        return observation_spec

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        raise RuntimeError(
            "MujocoPixels renders from a live MuJoCo physics: it works inside an env, not on "
            "stored data (replay buffers, modules)."
        )
