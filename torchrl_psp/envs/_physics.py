"""Access to the MuJoCo physics behind a TorchRL env, and fast, cached rendering of it.

Transforms of this package find the ``dm_control`` physics of their parent env (also
through :class:`~torchrl.envs.SerialEnv`), and render through one :class:`PhysicsRenderer`
per physics. The renderer keeps its cameras (``dm_control``'s ``Physics.render`` builds
a new camera and scene on every call) and caches the last segmentation image per camera,
keyed on the geometry it was rendered from, so that several transforms asking for the
segmentation of the same state render it once.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from torchrl_psp._torchrl_private import serial_sub_envs, wrapped_env
from torchrl_psp.envs._checks import MAX_IMAGE_SIZE

__all__ = [
    "PhysicsRenderer",
    "mujoco_physics",
    "renderer_for",
    "set_fast_rendering",
    "ensure_framebuffer",
    "FAST_SHADOW_SIZE",
]

#: Shadow map size used by fast rendering (MuJoCo's default is 4096).
FAST_SHADOW_SIZE = 256


def set_fast_rendering(
    physics: Any, shadowsize: int = FAST_SHADOW_SIZE, offsamples: int = 0
) -> None:
    """Makes software rendering of small images cheap: small shadow map, no multisampling.

    MuJoCo renders shadows into a ``shadowsize`` x ``shadowsize`` depth map (4096 by
    default) and multisamples the offscreen buffer (``offsamples``, 4 by default); with a
    software rasteriser both dominate the cost of a 64x64 frame. Both settings are read
    when the rendering context is created, so existing contexts are freed and rebuilt on
    the next render.

    Args:
        physics: a ``dm_control.mujoco.Physics``.
        shadowsize: shadow map size in pixels.
        offsamples: number of multisamples of the offscreen buffer.

    Examples:
        >>> from dm_control import suite
        >>> physics = suite.load("cartpole", "swingup").physics
        >>> set_fast_rendering(physics)
        >>> int(physics.model.vis.quality.shadowsize), int(physics.model.vis.quality.offsamples)
        (256, 0)
    """
    quality = physics.model.vis.quality
    if int(quality.shadowsize) == shadowsize and int(quality.offsamples) == offsamples:
        return
    quality.shadowsize = shadowsize
    quality.offsamples = offsamples
    if getattr(physics, "_contexts", None) is not None:
        physics._free_rendering_contexts()


def ensure_framebuffer(physics: Any, height: int, width: int) -> bool:
    """Grows the model's offscreen framebuffer to hold a ``height`` x ``width`` image.

    MuJoCo renders offscreen into a framebuffer of ``model.vis.global_.offwidth`` x
    ``offheight`` pixels (640 x 480 in DeepMind Control's models), which bounds the image
    size. The framebuffer is allocated with the rendering context, so existing contexts
    are freed and rebuilt on the next render when it grows.

    Args:
        physics: a ``dm_control.mujoco.Physics``.
        height, width: the image size, at most
            :data:`~torchrl_psp.envs.MAX_IMAGE_SIZE`.

    Returns:
        whether the framebuffer was grown.

    Examples:
        >>> from dm_control import suite
        >>> physics = suite.load("cartpole", "swingup").physics
        >>> ensure_framebuffer(physics, 600, 1000), ensure_framebuffer(physics, 64, 64)
        (True, False)
        >>> int(physics.model.vis.global_.offheight), int(physics.model.vis.global_.offwidth)
        (600, 1000)
    """
    buffer = physics.model.vis.global_
    if height <= buffer.offheight and width <= buffer.offwidth:
        return False
    if max(height, width) > MAX_IMAGE_SIZE:
        raise ValueError(
            f"Image size {height}x{width} exceeds the largest offscreen framebuffer "
            f"({MAX_IMAGE_SIZE} pixels per side)."
        )
    buffer.offheight = max(height, int(buffer.offheight))
    buffer.offwidth = max(width, int(buffer.offwidth))
    if getattr(physics, "_contexts", None) is not None:
        physics._free_rendering_contexts()
    return True


def mujoco_physics(env: Any) -> list[Any]:
    """Returns the ``dm_control`` physics of ``env``, one per batched sub-env.

    Unwraps :class:`~torchrl.envs.TransformedEnv` and :class:`~torchrl.envs.SerialEnv`
    (whose sub-envs live in this process) down to
    :class:`~torchrl.envs.DMControlEnv` / :class:`~torchrl.envs.DMControlWrapper`.

    Raises:
        ValueError: if the env has no MuJoCo physics in this process (for instance a
            :class:`~torchrl.envs.ParallelEnv`, whose physics live in worker processes,
            or a non-MuJoCo env).
    """
    from torchrl.envs import ParallelEnv, SerialEnv, TransformedEnv

    if env is None:
        raise ValueError(
            "This transform needs a parent env with MuJoCo physics, but it is not attached to "
            "an env. Append it to a TransformedEnv over DMControlEnv / DMControlWrapper."
        )
    if isinstance(env, TransformedEnv):
        return mujoco_physics(env.base_env)
    if isinstance(env, ParallelEnv):
        raise ValueError(
            "The MuJoCo physics of a ParallelEnv live in its worker processes, out of reach of a "
            "transform placed outside it. Put the transform inside each worker instead: "
            "ParallelEnv(n, lambda: TransformedEnv(DMControlEnv(...), transform))."
        )
    if isinstance(env, SerialEnv):
        return [physics for sub_env in serial_sub_envs(env) for physics in mujoco_physics(sub_env)]
    physics = getattr(wrapped_env(env), "physics", None)
    if physics is None or not hasattr(physics, "render"):
        raise ValueError(
            f"This transform needs a parent env with MuJoCo physics (torchrl's DMControlEnv or "
            f"DMControlWrapper); got {type(env).__name__}, which has none."
        )
    return [physics]


class PhysicsRenderer:
    """Renders RGB and segmentation images of one physics with reused cameras.

    Use :func:`renderer_for` to get the renderer shared by all transforms of a physics.

    Args:
        physics: a ``dm_control.mujoco.Physics``.
    """

    def __init__(self, physics: Any):
        self._physics_ref = weakref.ref(physics)
        self._cameras: dict[tuple[int, int, int], Any] = {}
        self._contexts = None
        self._segmentation_cache: dict[tuple[int, int, int], tuple[int, np.ndarray]] = {}

    @property
    def physics(self) -> Any:
        physics = self._physics_ref()
        if physics is None:
            raise RuntimeError("The physics of this renderer no longer exists.")
        return physics

    def _camera(self, height: int, width: int, camera_id: int) -> Any:
        from dm_control.mujoco.engine import Camera

        physics = self.physics
        ensure_framebuffer(physics, height, width)  # before the contexts: it may free them
        contexts = physics.contexts  # (re)creates rendering contexts when needed
        if contexts is not self._contexts:
            # Contexts were rebuilt (new render settings or a reloaded model): cameras
            # hold scenes of the old model and must be rebuilt too.
            self._cameras.clear()
            self._segmentation_cache.clear()
            self._contexts = contexts
        key = (height, width, camera_id)
        camera = self._cameras.get(key)
        if camera is None:
            camera = Camera(physics, height=height, width=width, camera_id=camera_id)
            self._cameras[key] = camera
        return camera

    def rgb(self, height: int, width: int, camera_id: int = 0) -> np.ndarray:
        """Renders an RGB image, ``uint8`` of shape ``(height, width, 3)``."""
        return self._camera(height, width, camera_id).render().copy()

    def segmentation(self, height: int, width: int, camera_id: int = 0) -> np.ndarray:
        """Renders MuJoCo's segmentation, ``int32`` ``(height, width, 2)``: object id and type.

        Background pixels are ``(-1, -1)``. The result is cached per camera and reused
        while the geometry (geom and camera poses) is unchanged.
        """
        camera = self._camera(height, width, camera_id)
        data = self.physics.data
        fingerprint = hash(
            (
                data.geom_xpos.tobytes(),
                data.geom_xmat.tobytes(),
                data.cam_xpos.tobytes(),
                data.cam_xmat.tobytes(),
            )
        )
        key = (height, width, camera_id)
        cached = self._segmentation_cache.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        image = np.ascontiguousarray(camera.render(segmentation=True))
        self._segmentation_cache[key] = (fingerprint, image)
        return image


_RENDERERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def renderer_for(physics: Any) -> PhysicsRenderer:
    """Returns the :class:`PhysicsRenderer` shared by every user of ``physics``."""
    renderer = _RENDERERS.get(physics)
    if renderer is None:
        renderer = PhysicsRenderer(physics)
        _RENDERERS[physics] = renderer
    return renderer


def stack_renders(arrays: Sequence[np.ndarray], batch_shape: torch.Size) -> torch.Tensor:
    """Stacks one render per sub-env into a tensor of shape ``(*batch_shape, *render_shape)``."""
    if len(arrays) == 1 and not batch_shape:
        return torch.from_numpy(arrays[0])
    stacked = torch.from_numpy(np.stack(arrays))
    if stacked.shape[0] != batch_shape.numel():
        raise ValueError(
            f"Found {stacked.shape[0]} MuJoCo physics for a TensorDict of batch shape "
            f"{tuple(batch_shape)}: expected one physics per batch element."
        )
    return stacked.reshape(*batch_shape, *stacked.shape[1:])
