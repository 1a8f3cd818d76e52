"""Learned and weight-free segmenters as TorchRL transforms.

* :class:`SAMSegmentation` -- Segment Anything's automatic masks -> ``"segments"``
  (the objects PSP aggregates its saliency over).
* :class:`PerSAMSegmentation` -- one-shot personalised SAM (PerSAM / PerSAM-F) ->
  ``"task_mask"`` (Segmentation Dreamer's SD_approx).
* :class:`SuperpixelSegmentation` -- graph-based / superpixel segmentation, no
  checkpoint -> ``"segments"``.
* :class:`ColorTaskMask` -- one-shot colour classifier, no checkpoint -> ``"task_mask"``.

All write the keys, dtypes and meaning of the ground-truth transform
(:mod:`torchrl_psp.keys`), so every loss takes any of them.
"""

from torchrl_psp.segmentation.automatic import automatic_segments, paint_segments, point_grid
from torchrl_psp.segmentation.base import SegmentationTransform
from torchrl_psp.segmentation.cache import FrameCache
from torchrl_psp.segmentation.checkpoints import (
    SAM_CHECKPOINT_URLS,
    build_tiny_sam,
    load_sam,
    resolve_device,
)
from torchrl_psp.segmentation.persam import PerSAMPredictor
from torchrl_psp.segmentation.persam_transform import PerSAMSegmentation
from torchrl_psp.segmentation.reference import check_reference, reference_from_env
from torchrl_psp.segmentation.sam import SAMSegmentation
from torchrl_psp.segmentation.weight_free import (
    ColorTaskMask,
    SuperpixelSegmentation,
    color_posterior,
)

__all__ = [
    "SAM_CHECKPOINT_URLS",
    "ColorTaskMask",
    "FrameCache",
    "PerSAMPredictor",
    "PerSAMSegmentation",
    "SAMSegmentation",
    "SegmentationTransform",
    "SuperpixelSegmentation",
    "automatic_segments",
    "build_tiny_sam",
    "check_reference",
    "color_posterior",
    "load_sam",
    "paint_segments",
    "point_grid",
    "reference_from_env",
    "resolve_device",
]
