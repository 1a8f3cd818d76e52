"""Shared helpers of the segmentation tests."""

from __future__ import annotations

import functools

import torch

#: SAM options that keep every mask, so that random weights still produce segments.
KEEP_ALL = {"pred_iou_thresh": None, "stability_score_thresh": None}

#: (domain, task) pairs rendered for the weight-free quality tests.
TASKS = (("cheetah", "run"), ("walker", "walk"), ("reacher", "easy"))


@functools.cache
def dmc_frames(domain: str, task: str, distractor: str, steps: int = 12, seed: int = 1):
    """Real DMC renders with ground truth: ``(reference, pixels, segments, task_mask)``.

    The reference is the reset frame of another seed (as Segmentation Dreamer takes it).
    """
    from torchrl_psp.envs import make_env
    from torchrl_psp.segmentation import reference_from_env

    reference = reference_from_env(
        make_env(domain, task, distractor=distractor, segmentation="gt", seed=seed + 100)
    )
    env = make_env(domain, task, distractor=distractor, segmentation="gt", seed=seed)
    torch.manual_seed(seed)
    td = env.rollout(steps, break_when_any_done=False)["next"]
    return reference, td["pixels"], td["segments"], td["task_mask"]
