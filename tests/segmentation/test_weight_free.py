"""Weight-free segmenters against the ground-truth transform on real DMC renders."""

from __future__ import annotations

import pytest
import torch

from torchrl_psp.keys import SEGMENTS_DTYPE
from torchrl_psp.segmentation import ColorTaskMask, SuperpixelSegmentation, color_posterior
from torchrl_psp.segmentation.metrics import (
    achievable_task_iou,
    boundary_precision_recall,
    mask_iou,
)

from .helpers import TASKS, dmc_frames

pytest.importorskip("torchrl_psp.envs", reason="needs the environments package")
DISTRACTORS = ("none", "reafferent", "video")


@pytest.mark.parametrize("distractor", DISTRACTORS)
@pytest.mark.parametrize("domain,task", TASKS)
def test_superpixels_follow_the_agent_outline(domain, task, distractor):
    _, pixels, segments, task_mask = dmc_frames(domain, task, distractor)
    pred = SuperpixelSegmentation().segment(pixels)
    assert pred.dtype == SEGMENTS_DTYPE and pred.shape == segments.shape and pred.min() >= 1
    # Every ground-truth boundary of the agent and task objects is a segment boundary.
    # (Boundaries of geoms hidden under a distractor, such as reacher's arena walls under
    # a video, are invisible; the quality table reports recall on all GT boundaries too.)
    _, recall = boundary_precision_recall(pred, task_mask.long(), tolerance=0)
    assert recall > 0.9
    # The agent is separated from its surroundings: whole segments rebuild the task mask.
    assert achievable_task_iou(pred, task_mask) > 0.9


@pytest.mark.parametrize("distractor", DISTRACTORS)
@pytest.mark.parametrize("domain,task", TASKS)
def test_color_task_mask_against_ground_truth(domain, task, distractor):
    reference, pixels, _, task_mask = dmc_frames(domain, task, distractor)
    pred = ColorTaskMask(reference).segment(pixels)
    assert pred.dtype == torch.bool and pred.shape == task_mask.shape
    # Random colour grids contain agent colours now and then: a lower bar there.
    assert mask_iou(pred, task_mask) > (0.6 if distractor == "reafferent" else 0.85)


def test_slic_option():
    _, pixels, segments, _ = dmc_frames("cheetah", "run", "none")
    pred = SuperpixelSegmentation("slic", n_segments=100).segment(pixels[:2])
    assert pred.shape == segments[:2].shape and pred.min() >= 1
    with pytest.raises(ValueError, match="method"):
        SuperpixelSegmentation("watershed")


def test_in_make_env_after_the_distractor():
    from torchrl.envs import check_env_specs

    from torchrl_psp.envs import make_env

    reference, *_ = dmc_frames("cheetah", "run", "video")
    env = make_env(
        "cheetah", "run", distractor="video", segmentation=ColorTaskMask(reference), seed=3
    )
    check_env_specs(env)
    td = env.rollout(3)
    assert td["next", "task_mask"].shape == (3, 64, 64)


def test_color_posterior_and_options():
    image = torch.zeros(4, 4, 3, dtype=torch.uint8)
    image[:2] = 255
    mask = image[..., 0] > 0
    table = color_posterior(image, mask, bins=8, smoothing=1.0)
    assert table.shape == (512,) and 0 <= table.min() and table.max() <= 1
    assert table[-1] > 0.5 > table[0]
    with pytest.raises(ValueError, match="bins"):
        ColorTaskMask((image, mask), bins=1)
    with pytest.raises(ValueError, match="pair"):
        ColorTaskMask(image)
