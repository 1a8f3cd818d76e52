"""Figures of the PSP and SD papers, gathered under one name.

The figures live in modules with one job each; this module re-exports their public names:

* :mod:`~torchrl_psp.training.panels` -- :func:`reconstruction_panel` (PSP Figs. 5 and 7)
  and :func:`sd_mask_panel` (SD Fig. 3a), one row per frame.
* :mod:`~torchrl_psp.training.curves` -- :func:`learning_curve_figure` (PSP Figs. 3 and 6,
  SD Fig. 2), :func:`aggregate_seeds`, :func:`plot_learning_curves` and
  :func:`save_figure`.
* :mod:`~torchrl_psp.training.video` -- :func:`write_video`, mp4 or gif of frames.
"""

from torchrl_psp.training.curves import (
    CurveStats,
    aggregate_seeds,
    learning_curve_figure,
    plot_learning_curves,
    save_figure,
)
from torchrl_psp.training.panels import (
    DIFF_CMAP,
    MASK_CMAP,
    TITLE_HEIGHT,
    WEIGHT_CMAP,
    reconstruction_panel,
    sd_mask_panel,
)
from torchrl_psp.training.video import write_video

__all__ = [
    "DIFF_CMAP",
    "MASK_CMAP",
    "TITLE_HEIGHT",
    "WEIGHT_CMAP",
    "CurveStats",
    "aggregate_seeds",
    "learning_curve_figure",
    "plot_learning_curves",
    "reconstruction_panel",
    "save_figure",
    "sd_mask_panel",
    "write_video",
]
