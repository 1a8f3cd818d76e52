"""Small utilities shared by the library, recipes and benchmarks."""

from torchrl_psp.utils.images import colorize_segments, image_grid, mask_to_rgb, save_image

__all__ = ["colorize_segments", "image_grid", "mask_to_rgb", "save_image"]
