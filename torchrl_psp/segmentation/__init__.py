"""Learned and weight-free segmenters as TorchRL transforms.

* :class:`SAMSegmentation` -- Segment Anything's automatic masks -> ``"segments"``
  (the objects PSP aggregates its saliency over).
* :class:`PerSAMSegmentation` -- one-shot personalised SAM (PerSAM / PerSAM-F) ->
  ``"task_mask"`` (Segmentation Dreamer's SD_approx).
* :class:`SuperpixelSegmentation` -- graph-based / superpixel segmentation, no
  checkpoint -> ``"segments"``.
* :class:`ColorTaskMask` -- one-shot colour classifier, no checkpoint -> ``"task_mask"``.

All write the keys, dtypes and meaning of the ground-truth transform
(:mod:`torchrl_psp.keys`), so every loss takes any of them. The SAM engine (models,
automatic masks, PerSAM) is the subpackage :mod:`torchrl_psp.segmentation.sam`;
``segment_anything`` is imported only where a SAM model is built.
"""

from torchrl_psp.segmentation.base import SegmentationTransform
from torchrl_psp.segmentation.cache import FrameCache
from torchrl_psp.segmentation.reference import check_reference, reference_from_env
from torchrl_psp.segmentation.sam import (
    SAM_CHECKPOINT_URLS,
    PerSAMPredictor,
    PerSAMSegmentation,
    SAMSegmentation,
    automatic_segments,
    build_tiny_sam,
    load_sam,
    paint_segments,
    point_grid,
)
from torchrl_psp.segmentation.weight_free import (
    ColorTaskMask,
    SuperpixelSegmentation,
    color_posterior,
)
from torchrl_psp.utils.device import resolve_device

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
