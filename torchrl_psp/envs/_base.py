"""Base class of the transforms that read the MuJoCo physics of their parent env."""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.envs import Transform

from torchrl_psp._torchrl_private import serial_sub_envs, wrapped_env
from torchrl_psp.envs._checks import parse_image_size
from torchrl_psp.envs._physics import PhysicsRenderer, mujoco_physics, renderer_for
from torchrl_psp.keys import PIXELS_KEY


def _parse_image_size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    return parse_image_size(image_size)


class PhysicsTransform(Transform):
    """A transform that renders from the ``dm_control`` physics of its parent env.

    Subclasses get :meth:`renderers` (one per batched sub-env, in batch order), the
    image size (explicit, or that of the parent's ``pixels_key`` entry) and the camera
    (explicit, or the one the parent renders its pixels with).

    Args:
        in_keys, out_keys: as for :class:`~torchrl.envs.Transform`.
        pixels_key: the pixel entry whose size and camera are matched.
        image_size: ``(height, width)`` or an int; ``None`` takes it from the spec of
            ``pixels_key``.
        camera_id: MuJoCo camera; ``None`` takes the camera the parent renders
            ``pixels_key`` with (0 if it cannot be found).
    """

    def __init__(
        self,
        in_keys: list | None = None,
        out_keys: list | None = None,
        *,
        pixels_key: str = PIXELS_KEY,
        image_size: int | tuple[int, int] | None = None,
        camera_id: int | None = None,
    ):
        super().__init__(in_keys=in_keys or [], out_keys=out_keys or [])
        self.pixels_key = pixels_key
        self._image_size = _parse_image_size(image_size)
        self._camera_id = camera_id
        self.__dict__["_renderers"] = None

    # -- parent plumbing -------------------------------------------------------------
    def set_container(self, container: Any) -> None:
        self.__dict__["_renderers"] = None
        super().set_container(container)

    def reset_parent(self) -> None:
        self.__dict__["_renderers"] = None
        super().reset_parent()

    def renderers(self) -> list[PhysicsRenderer]:
        """One renderer per batched sub-env of the parent, in batch order."""
        renderers = self.__dict__["_renderers"]
        if renderers is None:
            physics = mujoco_physics(self.parent)
            renderers = [renderer_for(p) for p in physics]
            self.__dict__["_renderers"] = renderers
        return renderers

    @property
    def camera_id(self) -> int:
        """The MuJoCo camera this transform renders with."""
        if self._camera_id is None:
            self._camera_id = _camera_of(self.parent, self.pixels_key)
        return self._camera_id

    def camera_for(self, pixels_key: str) -> int | None:
        """The camera this transform renders the entry ``pixels_key`` with, or ``None``.

        ``None`` here: a physics transform renders no pixel observation unless it says
        so (as :class:`~torchrl_psp.envs.MujocoPixels` does for its ``out_key``). A
        transform that matches the camera of ``pixels_key`` asks each physics transform
        of its parent, nearest first.
        """
        return None

    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of the images this transform renders."""
        if self._image_size is None:
            parent = self.parent
            if parent is None:
                raise ValueError(
                    f"{type(self).__name__} needs an image_size or a parent env with a "
                    f"{self.pixels_key!r} entry to match."
                )
            self._image_size = self._size_from_spec(parent.observation_spec)
        return self._image_size

    def _size_from_spec(self, observation_spec: Any) -> tuple[int, int]:
        if self._image_size is not None:
            return self._image_size
        spec = observation_spec.get(self.pixels_key, None)
        if spec is None:
            raise ValueError(
                f"{type(self).__name__} matches the size of the {self.pixels_key!r} entry, but the "
                f"parent env has no such entry (observation keys: "
                f"{list(observation_spec.keys(True, True))}). Pass image_size=... or render pixels "
                "first (DMControlWrapper(..., from_pixels=True) or MujocoPixels)."
            )
        shape = spec.shape
        if len(shape) < 3 or shape[-1] != 3:
            raise ValueError(
                f"Entry {self.pixels_key!r} must have shape (*batch, H, W, 3) (channels last, as "
                f"DeepMind Control renders it); its spec has shape {tuple(shape)}."
            )
        self._image_size = (int(shape[-3]), int(shape[-2]))
        return self._image_size

    def _render_segmentation(self, batch_shape: torch.Size) -> torch.Tensor:
        """MuJoCo segmentation of every sub-env: int32 ``(*batch, H, W, 2)``."""
        from torchrl_psp.envs._physics import stack_renders

        height, width = self.image_size()
        renders = [r.segmentation(height, width, self.camera_id) for r in self.renderers()]
        return stack_renders(renders, batch_shape)

    def _reset(
        self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase
    ) -> TensorDictBase:
        return self._call(tensordict_reset)


def _camera_of(env: Any, pixels_key: str) -> int:
    """Finds the camera with which ``env`` renders ``pixels_key`` (0 if unknown)."""
    from torchrl.envs import Compose, SerialEnv, TransformedEnv

    while env is not None:
        if isinstance(env, TransformedEnv):
            transforms = env.transform
            transforms = list(transforms) if isinstance(transforms, Compose) else [transforms]
            for transform in reversed(transforms):
                if isinstance(transform, PhysicsTransform):
                    camera = transform.camera_for(pixels_key)
                    if camera is not None:
                        return camera
            env = env.base_env
        elif isinstance(env, SerialEnv):
            env = serial_sub_envs(env)[0]
        else:
            render_kwargs = getattr(env, "render_kwargs", None) or {}
            camera = render_kwargs.get("camera_id", 0)
            if isinstance(camera, str):
                camera = wrapped_env(env).physics.model.name2id(camera, "camera")
            return int(camera)
    return 0
