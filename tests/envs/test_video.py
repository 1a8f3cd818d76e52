"""VideoBackground and its frame sources."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

from tests.envs.helpers import rollout_with_actions, with_transform
from torchrl_psp.envs import (
    ProceduralVideo,
    VideoBackground,
    VideoFolder,
    bounce_index,
    make_env,
    renderer_for,
)
from torchrl_psp.envs.video_sources import decoder_reason


def _frames(n: int, height: int = 40, width: int = 60) -> np.ndarray:
    """Frames whose first pixel encodes their index, so they can be told apart."""
    frames = np.zeros((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        frames[i] = (i * 10 % 256, 255 - i * 10 % 256, 128)
    return frames


def test_bounce_and_loop_playback():
    assert bounce_index(torch.arange(12), 5).tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3]
    assert bounce_index(torch.arange(3), 1).tolist() == [0, 0, 0]
    video = VideoBackground(ProceduralVideo(num_frames=5), playback="loop")
    frames = video.frames(16, 16)
    positions = torch.tensor([[3], [5], [11]])
    assert torch.equal(video.background(positions, 16, 16), frames[torch.tensor([3, 0, 1])])
    video = VideoBackground(ProceduralVideo(num_frames=5))
    assert torch.equal(video.background(positions, 16, 16), frames[torch.tensor([3, 3, 3])])


def test_folder_of_videos_gifs_and_images(tmp_path):
    iio.imwrite(tmp_path / "a.mp4", _frames(6), fps=10, codec="libx264")
    iio.imwrite(tmp_path / "b.gif", _frames(3, 30, 30))
    iio.imwrite(tmp_path / "c.png", np.full((20, 20, 3), 7, dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    frames = VideoFolder(tmp_path).frames(32, 32)
    assert frames.shape == (10, 32, 32, 3) and frames.dtype == torch.uint8
    assert frames[-1].eq(7).all()  # the image, last in name order
    # the gif frames are flat colours: resizing keeps them (up to rounding)
    assert (frames[6].int() - torch.tensor([0, 255, 128])).abs().max() <= 1
    # the video frames keep their order (lossy codec: compare the encoded red channel)
    reds = frames[:6, 16, 16, 0].float()
    assert torch.all(reds[1:] > reds[:-1])
    assert VideoFolder(tmp_path, max_frames=4).frames(32, 32).shape[0] == 4


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no video or image"):
        VideoFolder(tmp_path)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="broken.mp4"):
        VideoFolder(tmp_path).frames(16, 16)
    with pytest.raises(ValueError, match="source"):
        VideoBackground(source=3)


def test_procedural_video_is_deterministic_textured_and_moving():
    frames = ProceduralVideo(num_frames=30, seed=4).frames(64, 64)
    assert torch.equal(frames, ProceduralVideo(num_frames=30, seed=4).frames(64, 64))
    assert not torch.equal(frames, ProceduralVideo(num_frames=30, seed=5).frames(64, 64))
    pixels = frames.float()
    # textured: strong spatial variation inside each frame, in every colour channel
    assert pixels.std(dim=(1, 2)).min() > 15
    # moving: consecutive frames differ, and a frame 10 steps on differs a lot
    step = (pixels[1:] - pixels[:-1]).abs().mean(dim=(1, 2, 3))
    assert step.min() > 1.0
    assert (pixels[10] - pixels[0]).abs().mean() > 10


def test_grayscale_frames():
    video = VideoBackground(ProceduralVideo(num_frames=4), grayscale=True)
    frames = video.frames(16, 16)
    assert torch.equal(frames[..., 0], frames[..., 1]) and torch.equal(
        frames[..., 0], frames[..., 2]
    )
    colour = ProceduralVideo(num_frames=4).frames(16, 16).float()
    expected = (colour * torch.tensor([0.299, 0.587, 0.114])).sum(-1).round()
    assert torch.equal(frames[..., 0].float(), expected)


def test_episode_starts_at_a_seeded_random_frame_and_advances_one_frame_per_step():
    env = with_transform(VideoBackground(ProceduralVideo(num_frames=40), seed=7))
    video = env.transform
    starts = []
    for _ in range(4):
        td = env.reset()
        start = td["video_position"].item()
        starts.append(start)
        frames = video.frames(64, 64)
        for t in range(3):
            mask = torch.from_numpy(
                renderer_for(env.base_env._env.physics).segmentation(64, 64, 0)[..., 0] == -1
            )
            expected = frames[bounce_index(torch.tensor(start + t), 40)]
            assert torch.equal(td["pixels"][mask], expected[mask])
            td = env.rand_step(td)["next"]
    assert len(set(starts)) > 1  # random starts
    env2 = with_transform(VideoBackground(ProceduralVideo(num_frames=40), seed=7))
    assert [env2.reset()["video_position"].item() for _ in range(4)] == starts  # seeded
    video.set_seed(7)
    assert [env.reset()["video_position"].item() for _ in range(4)] == starts


def test_specs():
    check_env_specs(with_transform(VideoBackground(ProceduralVideo(num_frames=40))))


def test_same_seed_same_actions_same_frames():
    actions = torch.rand(4, 6) * 2 - 1
    first = rollout_with_actions(with_transform(VideoBackground(seed=2)), actions)
    second = rollout_with_actions(with_transform(VideoBackground(seed=2)), actions)
    assert torch.equal(first["pixels"], second["pixels"])


def test_corrupt_video_error_names_the_file_and_the_reason_only(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "bad.mp4").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"Could not read .*bad\.mp4: ") as error:
        VideoFolder(tmp_path).frames(16, 16)
    message = str(error.value)
    assert "Invalid data" in message  # ffmpeg's reason is kept...
    assert "ffmpeg version" not in message and "configuration:" not in message  # ...its banner not
    assert "\n" not in message and len(message) < 400
    assert error.value.__cause__ is None and error.value.__suppress_context__
    # through make_env: the frames are decoded at the first reset
    env = make_env("cheetah", "run", distractor="video", video_source=tmp_path)
    with pytest.raises(ValueError, match=r"Could not read .*bad\.mp4: ") as error:
        env.reset()
    assert "ffmpeg version" not in str(error.value)


def test_decoder_reason_keeps_first_line_and_last_log_line():
    error = OSError(
        "Could not load meta information\n=== stderr ===\n\nffmpeg version 9\n  x\nBad."
    )
    assert decoder_reason(error) == "Could not load meta information (ffmpeg: Bad.)"
    assert decoder_reason(ValueError("cannot identify image file 'a.png'")) == (
        "cannot identify image file 'a.png'"
    )
    assert len(decoder_reason(RuntimeError("x" * 1000))) == 300


def test_video_source_sizes_must_be_positive_ints(tmp_path):
    iio.imwrite(tmp_path / "c.png", np.full((20, 20, 3), 7, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"max_frames must be a positive int or None, got 1\.5"):
        VideoFolder(tmp_path, max_frames=1.5)
    with pytest.raises(ValueError, match=r"num_frames must be a positive int, got 0"):
        ProceduralVideo(num_frames=0)
