"""Shared pytest set-up: headless rendering and a deterministic torch."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("WANDB_MODE", "offline")

import torch  # noqa: E402

import torchrl_psp  # noqa: E402, F401  (before dm_control: see torchrl_psp's docstring)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
