"""The pictures of the package: the papers' panels, learning curves, videos and image grids.

* :mod:`~torchrl_psp.figures.panels` -- :func:`reconstruction_panel` (PSP Figs. 5 and 7)
  and :func:`sd_mask_panel` (SD Fig. 3a), one row per frame.
* :mod:`~torchrl_psp.figures.curves` -- :func:`learning_curve_figure` (PSP Figs. 3 and 6,
  SD Fig. 2), :func:`aggregate_seeds`, :func:`plot_learning_curves` and
  :func:`save_figure`.
* :mod:`~torchrl_psp.figures.video` -- :func:`write_video`, mp4 or gif of frames.
* :mod:`~torchrl_psp.figures.images` -- :func:`colorize_segments`, :func:`mask_to_rgb`,
  :func:`image_grid` (the one tiler, which the panels use too) and :func:`save_image`.
* :mod:`~torchrl_psp.figures.frames` -- :func:`to_numpy` (the one tensor-to-numpy
  conversion), :func:`to_uint8`, :func:`channels_last` and :func:`upscale`.

Importing the package imports neither torch nor ``matplotlib.pyplot`` (matplotlib and
imageio are imported where a picture is drawn or written), so that light tools
(``recipes/compare.py``) can use it.
"""

from torchrl_psp.figures.curves import (
    CurveStats,
    aggregate_seeds,
    clean_curve,
    label_curve_axes,
    learning_curve_figure,
    plot_learning_curves,
    save_figure,
)
from torchrl_psp.figures.frames import channels_last, to_numpy, to_uint8, upscale
from torchrl_psp.figures.images import colorize_segments, image_grid, mask_to_rgb, save_image
from torchrl_psp.figures.panels import (
    DIFF_CMAP,
    MASK_CMAP,
    TITLE_HEIGHT,
    WEIGHT_CMAP,
    reconstruction_panel,
    sd_mask_panel,
)
from torchrl_psp.figures.video import write_video

__all__ = [
    "DIFF_CMAP",
    "MASK_CMAP",
    "TITLE_HEIGHT",
    "WEIGHT_CMAP",
    "CurveStats",
    "aggregate_seeds",
    "channels_last",
    "clean_curve",
    "colorize_segments",
    "image_grid",
    "label_curve_axes",
    "learning_curve_figure",
    "mask_to_rgb",
    "plot_learning_curves",
    "reconstruction_panel",
    "save_figure",
    "save_image",
    "sd_mask_panel",
    "to_numpy",
    "to_uint8",
    "upscale",
    "write_video",
]
