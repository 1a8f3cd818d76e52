"""Writes the figures of docs/envs.rst: ``python docs/make_figures.py``.

* ``_static/compositing.png``: the same state composited four ways (rows), for the
  reafferent and the video background (columns), on cheetah-run and hopper-stand.
* ``_static/what_the_agent_sees.png``: raw | distracted | GT segments | task mask for each
  paper task with the reafferent background.
"""

from __future__ import annotations

from pathlib import Path

import torch

import torchrl_psp  # noqa: F401  (headless rendering set-up, before dm_control)
from torchrl_psp.envs import PAPER_TASKS, make_env, renderer_for
from torchrl_psp.figures import colorize_segments, image_grid, mask_to_rgb, save_image

STATIC = Path(__file__).parent / "_static"
MODES = [
    ("segmentation", False),
    ("segmentation", True),
    ("skybox", None),
    ("colorkey", None),
]


def frame(domain, task, distractor, compositing, replace_floor, steps=10):
    env = make_env(
        domain, task, distractor=distractor, compositing=compositing, replace_floor=replace_floor
    )
    torch.manual_seed(0)
    td = env.rollout(steps)["next"][-1]
    return td["pixels"]


def compositing_figure() -> Path:
    rows = []
    for compositing, floor in MODES:
        row = []
        for domain, task in (("cheetah", "run"), ("hopper", "stand")):
            for distractor in ("reafferent", "video"):
                row.append(frame(domain, task, distractor, compositing, floor))
        rows.append(row)
    return save_image(STATIC / "compositing.png", image_grid(rows, scale=3))


def tasks_figure() -> Path:
    rows = []
    for domain, task in PAPER_TASKS:
        env = make_env(domain, task, distractor="reafferent", segmentation="gt")
        torch.manual_seed(0)
        td = env.rollout(10)["next"][-1]
        raw = renderer_for(env.base_env._env.physics).rgb(64, 64, env.transform[1].camera_id)
        rows.append(
            [raw, td["pixels"], colorize_segments(td["segments"]), mask_to_rgb(td["task_mask"])]
        )
    return save_image(STATIC / "what_the_agent_sees.png", image_grid(rows, scale=2))


if __name__ == "__main__":
    print(compositing_figure())
    print(tasks_figure())
