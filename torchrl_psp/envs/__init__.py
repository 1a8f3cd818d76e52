"""Distracted DeepMind Control environments as TorchRL transforms.

``make_env`` builds a whole environment; each piece is also a transform that can be
appended to a ``TransformedEnv(DMControlEnv / DMControlWrapper(...))`` of your own.
Pixels are ``uint8`` ``(*batch, H, W, 3)`` (channels last, as DeepMind Control renders
them) under ``"pixels"``; see :mod:`torchrl_psp.keys` for the other entries.
"""

from torchrl_psp.envs._checks import MAX_IMAGE_SIZE
from torchrl_psp.envs._physics import (
    PhysicsRenderer,
    ensure_framebuffer,
    mujoco_physics,
    renderer_for,
    set_fast_rendering,
)
from torchrl_psp.envs.background import BackgroundTransform
from torchrl_psp.envs.compositing import COMPOSITING_MODES, colorkey_mask
from torchrl_psp.envs.factory import DISTRACTORS, PAPER_TASKS, available_tasks, make_env
from torchrl_psp.envs.gt_segmentation import DEFAULT_TASK_GEOMS, GroundTruthSegmentation
from torchrl_psp.envs.pixels import MujocoPixels
from torchrl_psp.envs.reafferent import ReafferentBackground, reafferent_grids
from torchrl_psp.envs.video import VideoBackground, bounce_index
from torchrl_psp.envs.video_sources import ProceduralVideo, VideoFolder, VideoSource

__all__ = [
    "BackgroundTransform",
    "COMPOSITING_MODES",
    "DEFAULT_TASK_GEOMS",
    "DISTRACTORS",
    "GroundTruthSegmentation",
    "MAX_IMAGE_SIZE",
    "MujocoPixels",
    "PAPER_TASKS",
    "PhysicsRenderer",
    "ProceduralVideo",
    "ReafferentBackground",
    "VideoBackground",
    "VideoFolder",
    "VideoSource",
    "available_tasks",
    "bounce_index",
    "colorkey_mask",
    "ensure_framebuffer",
    "make_env",
    "mujoco_physics",
    "reafferent_grids",
    "renderer_for",
    "set_fast_rendering",
]
