"""Builders shared by the environment tests."""

from __future__ import annotations

import torch
from dm_control import suite
from torchrl.envs import DMControlWrapper, TransformedEnv


def dmc_pixels(
    domain: str = "cheetah", task: str = "run", size: int = 64, camera_id: int = 0, seed: int = 0
):
    """TorchRL's own pixel env, as a user would build it."""
    return DMControlWrapper(
        suite.load(domain, task, task_kwargs={"random": seed}),
        from_pixels=True,
        pixels_only=True,
        render_kwargs={"height": size, "width": size, "camera_id": camera_id},
    )


def with_transform(transform, **kwargs):
    return TransformedEnv(dmc_pixels(**kwargs), transform)


def rollout_with_actions(env, actions: torch.Tensor):
    """Resets and plays a fixed action sequence; returns the stacked step outputs."""
    td = env.reset()
    steps = []
    for action in actions:
        td["action"] = action
        td = env.step(td)
        steps.append(td["next"].clone())
        td = td["next"]
    return torch.stack(steps)
