"""Where a background image goes: the three ways of compositing a distractor into a frame.

* ``"segmentation"`` (default, exact): MuJoCo's segmentation render says which pixels
  show no geom (the skybox) and, optionally, the floor; only those are overwritten.
* ``"skybox"`` (the Distracting Control Suite's way): the background is written into the
  skybox texture and the floor is made semi-transparent, then the frame is rendered
  again. Textures are sampled in perspective, so the background is warped and the floor
  blends it with its grid.
* ``"colorkey"`` (the DBC / TIA / DreamerPro wrappers' way): pixels whose blue channel
  exceeds red and green are overwritten. Cheap and needs no physics, but it also hits
  blue-ish parts of the agent and misses non-blue background.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import torch

__all__ = ["COMPOSITING_MODES", "colorkey_mask", "SegmentationBackgroundMask", "SkyboxWriter"]

COMPOSITING_MODES = ("segmentation", "skybox", "colorkey")

_MJOBJ_GEOM = int(mujoco.mjtObj.mjOBJ_GEOM)
_MJGEOM_PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)
_MJTEXTURE_SKYBOX = int(mujoco.mjtTexture.mjTEXTURE_SKYBOX)


def colorkey_mask(pixels: torch.Tensor) -> torch.Tensor:
    """Background mask of the colour-key rule: blue greater than both red and green.

    Args:
        pixels: ``uint8`` ``(*batch, H, W, 3)``.

    Returns:
        ``bool`` ``(*batch, H, W)``.

    Examples:
        >>> pixels = torch.tensor([[[10, 20, 30], [30, 20, 10], [5, 30, 30]]], dtype=torch.uint8)
        >>> colorkey_mask(pixels).tolist()
        [[True, False, False]]
    """
    red, green, blue = pixels.unbind(-1)
    return (blue > red) & (blue > green)


def floor_geoms(model: Any) -> np.ndarray:
    """Ids of the floor: plane geoms of the world body."""
    return np.flatnonzero(
        (np.asarray(model.geom_bodyid) == 0) & (np.asarray(model.geom_type) == _MJGEOM_PLANE)
    )


class SegmentationBackgroundMask:
    """Turns MuJoCo segmentation renders of one model into background masks.

    Args:
        model: the ``MjModel`` (or dm_control wrapper) the renders come from.
        replace_floor: also count the floor (plane geoms of the world body) as background.
    """

    def __init__(self, model: Any, replace_floor: bool):
        ngeom = int(model.ngeom)
        # index 0: no object (skybox); 1..ngeom: geoms; ngeom + 1: any other object type.
        lut = np.zeros(ngeom + 2, dtype=bool)
        lut[0] = True
        if replace_floor:
            lut[floor_geoms(model) + 1] = True
        self._lut = lut
        self._other = ngeom + 1

    def __call__(self, segmentation: np.ndarray) -> np.ndarray:
        objid, objtype = segmentation[..., 0], segmentation[..., 1]
        index = np.where(objtype == _MJOBJ_GEOM, objid + 1, np.where(objid < 0, 0, self._other))
        return self._lut[index]


class SkyboxWriter:
    """Writes images into the skybox texture of one physics (Distracting Control Suite style).

    Every face of the cube texture receives the image (resized to the face). The floor's
    material (or colour, when it has no material) gets alpha ``ground_plane_alpha`` so
    that the skybox shows through it.

    Args:
        physics: a ``dm_control.mujoco.Physics`` with a skybox texture.
        ground_plane_alpha: opacity of the floor, in ``[0, 1]``.
    """

    def __init__(self, physics: Any, ground_plane_alpha: float):
        model = physics.model
        skyboxes = np.flatnonzero(np.asarray(model.tex_type) == _MJTEXTURE_SKYBOX)
        if skyboxes.size == 0:
            raise ValueError(
                "compositing='skybox' needs a model with a skybox texture; this one has none. "
                "Use compositing='segmentation' instead."
            )
        self.physics = physics
        self.texture_id = int(skyboxes[0])
        self.face = int(model.tex_width[self.texture_id])
        self.channels = int(model.tex_nchannel[self.texture_id])
        height = int(model.tex_height[self.texture_id])
        self.faces = height // self.face
        self.address = int(model.tex_adr[self.texture_id])
        self.size = self.face * height * self.channels
        for geom in floor_geoms(model):
            material = int(model.geom_matid[geom])
            if material >= 0:
                model.mat_rgba[material, 3] = ground_plane_alpha
            else:
                model.geom_rgba[geom, 3] = ground_plane_alpha

    def write(self, image: torch.Tensor) -> None:
        """Writes one ``uint8`` ``(H, W, 3)`` image on every face and uploads the texture."""
        face = torch.nn.functional.interpolate(
            image.permute(2, 0, 1)[None].float(),
            size=(self.face, self.face),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0]
        face = face.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
        if self.channels == 4:
            face = torch.cat([face, torch.full_like(face[..., :1], 255)], -1)
        elif self.channels == 1:
            face = face.float().mean(-1, keepdim=True).round().to(torch.uint8)
        data = face.numpy()[None].repeat(self.faces, 0).reshape(-1)
        model = self.physics.model
        model.tex_data[self.address : self.address + self.size] = data
        contexts = self.physics.contexts
        with contexts.gl.make_current() as ctx:
            ctx.call(mujoco.mjr_uploadTexture, model.ptr, contexts.mujoco.ptr, self.texture_id)
