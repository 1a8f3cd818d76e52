"""The Segment Anything engine: models, batched SAM steps, automatic masks, PerSAM.

* :mod:`~torchrl_psp.segmentation.sam.checkpoints` -- loading a SAM checkpoint, or a
  tiny random SAM for tests.
* :mod:`~torchrl_psp.segmentation.sam.core` -- batched preprocessing, encoding,
  prompting and decoding on SAM's own modules.
* :mod:`~torchrl_psp.segmentation.sam.automatic` -- automatic mask generation painted
  into a segment-id image.
* :mod:`~torchrl_psp.segmentation.sam.persam` -- PerSAM / PerSAM-F one-shot masks.
* :mod:`~torchrl_psp.segmentation.sam.transform` and
  :mod:`~torchrl_psp.segmentation.sam.persam_transform` -- the two as TorchRL transforms.

``segment_anything`` itself is imported where a SAM is built (:func:`load_sam`,
:func:`build_tiny_sam`, :func:`resolve_sam`), so importing this package, or the
weight-free segmenters next to it, does not import it.
"""

from torchrl_psp.segmentation.sam.automatic import automatic_segments, paint_segments, point_grid
from torchrl_psp.segmentation.sam.checkpoints import (
    SAM_CHECKPOINT_URLS,
    build_tiny_sam,
    load_sam,
    resolve_sam,
)
from torchrl_psp.segmentation.sam.persam import PerSAMPredictor
from torchrl_psp.segmentation.sam.persam_transform import PerSAMSegmentation
from torchrl_psp.segmentation.sam.transform import SAMSegmentation

__all__ = [
    "SAM_CHECKPOINT_URLS",
    "PerSAMPredictor",
    "PerSAMSegmentation",
    "SAMSegmentation",
    "automatic_segments",
    "build_tiny_sam",
    "load_sam",
    "paint_segments",
    "point_grid",
    "resolve_sam",
]
