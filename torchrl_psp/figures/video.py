"""Videos of frames: H.264 mp4 that browsers play, or gif."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from torchrl_psp.figures.frames import channels_last, to_uint8, upscale

if TYPE_CHECKING:
    import torch

__all__ = ["write_video"]


def write_video(
    path: str | Path,
    frames: torch.Tensor | np.ndarray,
    fps: int = 20,
    *,
    min_height: int = 256,
) -> Path:
    """Writes frames as an H.264 mp4 (imageio's ffmpeg plugin), or a gif if ``path`` ends
    with ``.gif``; returns the path.

    Small frames are upscaled by the smallest integer factor that makes them at least
    ``min_height`` pixels tall (nearest neighbour: a 64x64 frame becomes 256x256 with
    4x4 blocks), so that browsers play them at a visible size. mp4 frames are padded to
    even sizes (repeating the last row/column) for the ``yuv420p`` pixel format that
    browsers decode.

    Args:
        path: ``.mp4`` (or any ffmpeg container) or ``.gif``; the folder is created.
        frames: ``uint8 (T, H, W, 3)`` (``(T, 3, H, W)`` and floats in [0, 1] are accepted).
        fps: frames per second.
        min_height: minimum displayed height in pixels.

    Examples:
        >>> import tempfile
        >>> import imageio.v3 as iio
        >>> frames = np.zeros((5, 64, 64, 3), dtype=np.uint8)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     video = write_video(Path(folder) / "episode.mp4", frames)
        ...     iio.imread(video, plugin="pyav").shape
        (5, 256, 256, 3)
    """
    path = Path(path)
    array = channels_last(frames, "frames", "(T, H, W, 3)")
    if array.dtype != np.uint8:
        array = to_uint8(array.astype(np.float32))
    if array.shape[0] == 0:
        raise ValueError("no frames to write.")
    array = upscale(array, math.ceil(min_height / array.shape[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, array, duration=1000.0 / fps, loop=0)
        return path
    import imageio.v2 as iio2

    pad_h, pad_w = array.shape[1] % 2, array.shape[2] % 2
    if pad_h or pad_w:
        array = np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    iio2.mimwrite(
        path,
        list(array),
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        output_params=["-movflags", "+faststart"],
    )
    return path
