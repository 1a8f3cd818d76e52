"""Natural-video backgrounds (PSP §3.1, SD §3, the Distracting Control Suite)."""

from __future__ import annotations

from pathlib import Path

import torch
from tensordict import TensorDictBase

from torchrl_psp.envs.background import BackgroundTransform
from torchrl_psp.envs.video_sources import ProceduralVideo, VideoFolder, VideoSource

__all__ = ["VideoBackground", "bounce_index"]

PLAYBACK_MODES = ("bounce", "loop")


def bounce_index(position: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Frame shown at virtual ``position`` when playback reverses at both ends.

    ``0, 1, ..., N-1, N-2, ..., 1, 0, 1, ...`` (period ``2N - 2``; always 0 if ``N == 1``).

    Examples:
        >>> bounce_index(torch.arange(8), 4).tolist()
        [0, 1, 2, 3, 2, 1, 0, 1]
    """
    if num_frames == 1:
        return torch.zeros_like(position)
    period = 2 * num_frames - 2
    phase = position % period
    return torch.where(phase < num_frames, phase, period - phase)


class VideoBackground(BackgroundTransform):
    """Replaces the background with frames of a video, one frame per environment step.

    Each episode starts at a random frame (drawn from this transform's own generator,
    seeded by ``seed``) and advances one frame per step. At the ends of the video the
    playback either reverses (``playback="bounce"``, the default, as the Distracting
    Control Suite does: no jump cut) or wraps around (``"loop"``).

    The state entry ``state_key`` holds the virtual frame position (``int64``,
    ``(*batch, 1)``): the start frame plus the steps elapsed.

    .. note:: TorchRL's ``env.set_seed`` does not reach transforms: seed this one with
        ``seed=`` (as :func:`~torchrl_psp.envs.make_env` does) or :meth:`set_seed`.

    Args:
        source: a folder of videos or images (see :class:`~torchrl_psp.envs.VideoFolder`),
            a :class:`~torchrl_psp.envs.VideoSource`, or ``None`` for the built-in
            :class:`~torchrl_psp.envs.ProceduralVideo` (runs offline).
        grayscale: convert frames to grey (PSP used 2,000 grayscale frames; SD colour).
        max_frames: with a folder, keep at most this many frames.
        playback: ``"bounce"`` or ``"loop"``.
        seed: seed of the start frames. Defaults to 0.
        state_key: the state entry. Defaults to ``"video_position"``.
        compositing, replace_floor, ground_plane_alpha, pixels_key, camera_id: see
            :class:`~torchrl_psp.envs.BackgroundTransform`.

    Examples:
        >>> from dm_control import suite
        >>> from torchrl.envs import DMControlWrapper, TransformedEnv
        >>> base = DMControlWrapper(
        ...     suite.load("cheetah", "run"), from_pixels=True, pixels_only=True,
        ...     render_kwargs={"height": 64, "width": 64, "camera_id": 0},
        ... )
        >>> env = TransformedEnv(base, VideoBackground(ProceduralVideo(num_frames=50), seed=1))
        >>> td = env.rollout(3)
        >>> steps = td["next", "video_position"] - td["video_position"]
        >>> steps.flatten().tolist()
        [1, 1, 1]
    """

    def __init__(
        self,
        source: str | Path | VideoSource | None = None,
        *,
        grayscale: bool = False,
        max_frames: int | None = None,
        playback: str = "bounce",
        seed: int = 0,
        state_key: str = "video_position",
        compositing: str = "segmentation",
        replace_floor: bool = False,
        ground_plane_alpha: float = 0.3,
        pixels_key: str = "pixels",
        camera_id: int | None = None,
    ):
        super().__init__(
            state_key,
            1,
            compositing=compositing,
            replace_floor=replace_floor,
            ground_plane_alpha=ground_plane_alpha,
            pixels_key=pixels_key,
            camera_id=camera_id,
        )
        if playback not in PLAYBACK_MODES:
            raise ValueError(f"playback must be one of {PLAYBACK_MODES}, got {playback!r}.")
        if source is None:
            source = ProceduralVideo(seed=seed)
        elif isinstance(source, (str, Path)):
            source = VideoFolder(source, max_frames=max_frames)
        elif not isinstance(source, VideoSource):
            raise ValueError(
                f"source must be a folder path, a VideoSource or None; got {type(source).__name__}."
            )
        self.source = source
        self.grayscale = grayscale
        self.playback = playback
        self.__dict__["_frames"] = {}
        self.__dict__["_generator"] = torch.Generator()
        self.set_seed(seed)

    def set_seed(self, seed: int) -> None:
        """Re-seeds the generator of the episodes' start frames."""
        self.seed = seed
        self.__dict__["_generator"].manual_seed(seed)

    def frames(self, height: int, width: int) -> torch.Tensor:
        """The video at ``(height, width)``: ``uint8`` ``(num_frames, height, width, 3)``."""
        cache = self.__dict__["_frames"]
        if (height, width) not in cache:
            frames = self.source.frames(height, width)
            if self.grayscale:
                weights = torch.tensor([0.299, 0.587, 0.114])
                grey = (frames.float() * weights).sum(-1, keepdim=True).round().to(torch.uint8)
                frames = grey.expand_as(frames).contiguous()
            cache[(height, width)] = frames
        return cache[(height, width)]

    @property
    def num_frames(self) -> int:
        """Length of the video."""
        if not self.__dict__["_frames"]:
            height, width = self.image_size()
            return self.frames(height, width).shape[0]
        return next(iter(self.__dict__["_frames"].values())).shape[0]

    def initial_state(self, batch_shape: torch.Size) -> torch.Tensor:
        return torch.randint(
            0, self.num_frames, (*batch_shape, 1), generator=self.__dict__["_generator"]
        )

    def next_state(self, state: torch.Tensor, tensordict: TensorDictBase) -> torch.Tensor:
        return state + 1

    def background(self, state: torch.Tensor, height: int, width: int) -> torch.Tensor:
        frames = self.frames(height, width)
        position = state[..., 0]
        if self.playback == "bounce":
            index = bounce_index(position, frames.shape[0])
        else:
            index = position % frames.shape[0]
        return frames[index]
