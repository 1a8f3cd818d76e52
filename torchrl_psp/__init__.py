"""TorchRL components for distraction-robust model-based reinforcement learning.

Sub-packages:

* :mod:`torchrl_psp.envs` -- distracted DeepMind Control environments as TorchRL
  transforms (reafferent and video backgrounds, ground-truth segmentation).
* :mod:`torchrl_psp.segmentation` -- learned segmenters as transforms (SAM, PerSAM,
  weight-free segmenters).
* :mod:`torchrl_psp.objectives` -- Policy-Shaped Prediction and Segmentation Dreamer
  losses on top of TorchRL's DreamerV3 losses.
* :mod:`torchrl_psp.modules` -- saliency, gradient reversal and auxiliary heads.

Importing the package sets ``MUJOCO_GL=egl`` when no rendering back-end was chosen and no
display is available, so that MuJoCo renders headless; set ``MUJOCO_GL`` yourself to
override this.

With EGL, the package also imports ``triton`` (when installed) right away: once MuJoCo
has initialised EGL with Mesa's software rasteriser, a later ``import triton`` (which
``torch.compile`` and ``torch._dynamo`` do) crashes the process with a segmentation fault
(both bundle LLVM). Import ``torchrl_psp`` (or ``triton``) before ``dm_control``.
"""

import os as _os

if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"
    _os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

if _os.environ.get("MUJOCO_GL") == "egl":
    try:  # must precede EGL initialisation: see the module docstring
        import triton  # noqa: F401
    except Exception:  # not installed, or no usable build: nothing to protect
        pass

__version__ = "0.1.0"
