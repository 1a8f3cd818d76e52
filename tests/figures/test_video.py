"""Videos of frames: mp4 that browsers decode, gif."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import torch

from torchrl_psp.figures.video import write_video


def test_write_video_mp4_upscales_and_decodes(tmp_path):
    frames = np.zeros((7, 64, 64, 3), dtype=np.uint8)
    for t in range(7):
        frames[t, :, :32] = (30 * t, 200, 40)  # a constant block per frame
    path = write_video(tmp_path / "videos" / "episode.mp4", frames, fps=10)
    decoded = iio.imread(path, plugin="pyav")
    assert decoded.shape == (7, 256, 256, 3)
    assert iio.immeta(path, plugin="pyav")["fps"] == 10
    block = decoded[:, 100:150, 20:100].astype(int)  # inside the coloured block, upscaled
    assert np.abs(block - frames[:, :1, :1].astype(int)).max() < 12


def test_write_video_gif_channels_first_and_odd_sizes(tmp_path):
    frames = torch.zeros(4, 3, 33, 47, dtype=torch.uint8)
    frames[:, 0] = 255
    frames[:, 2] = torch.arange(4, dtype=torch.uint8)[:, None, None] * 60  # frames differ
    gif = iio.imread(write_video(tmp_path / "a.gif", frames), index=None)
    assert gif.shape[:3] == (4, 33 * 8, 47 * 8)  # ceil(256 / 33) = 8
    assert (gif[..., 0] == 255).all() and (gif[..., 1] == 0).all()
    assert gif[:, :, :, 2].reshape(4, -1).max(1).tolist() == [0, 60, 120, 180]
    mp4 = iio.imread(write_video(tmp_path / "b.mp4", frames, min_height=1), plugin="pyav")
    assert mp4.shape == (4, 34, 48, 3)  # padded to even sizes for yuv420p
