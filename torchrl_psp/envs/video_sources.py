"""Sources of background frames: a user's folder of videos or images, or procedural video."""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from torchrl_psp.envs._checks import check_int

__all__ = [
    "VideoSource",
    "VideoFolder",
    "ProceduralVideo",
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "resize_frames",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class VideoSource(abc.ABC):
    """A finite sequence of RGB frames, produced at the size the consumer asks for."""

    @abc.abstractmethod
    def frames(self, height: int, width: int) -> torch.Tensor:
        """All frames, ``uint8`` ``(num_frames, height, width, 3)``."""


def resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Centre-crops ``uint8`` ``(N, h, w, 3)`` frames to the target aspect and resizes them.

    Examples:
        >>> resize_frames(torch.zeros(2, 90, 160, 3, dtype=torch.uint8), 64, 64).shape
        torch.Size([2, 64, 64, 3])
    """
    n, h, w, _ = frames.shape
    target = width / height
    if w / h > target:
        crop = round(h * target)
        left = (w - crop) // 2
        frames = frames[:, :, left : left + crop]
    elif w / h < target:
        crop = round(w / target)
        top = (h - crop) // 2
        frames = frames[:, top : top + crop]
    images = frames.permute(0, 3, 1, 2).float()
    if images.shape[-2:] != (height, width):
        images = F.interpolate(
            images, size=(height, width), mode="bilinear", align_corners=False, antialias=True
        )
    return images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _to_rgb(frame: np.ndarray, path: Path) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, -1)
    if frame.ndim != 3 or frame.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Could not read {path}: unexpected frame shape {frame.shape}.")
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, -1)
    frame = frame[..., :3]
    if frame.dtype != np.uint8:
        scale = 255.0 if frame.dtype.kind == "f" and frame.max() <= 1.0 else 1.0
        frame = np.clip(frame.astype(np.float64) * scale, 0, 255).astype(np.uint8)
    return frame


def decoder_reason(error: BaseException, max_chars: int = 300) -> str:
    """The reason a decoder gives for failing, without ffmpeg's banner and log.

    ``imageio``'s ffmpeg plug-in appends ffmpeg's whole stderr (version, build
    configuration, library versions, then the log) to its message; the reason is its
    first line and the last line of the log.

    Examples:
        >>> error = OSError("Could not load meta information\\n=== stderr ===\\n\\n"
        ...                 "ffmpeg version 7 Copyright\\n  configuration: --enable-gpl\\n"
        ...                 "Error opening input files: Invalid data found when processing input")
        >>> decoder_reason(error)
        'Could not load meta information (ffmpeg: Error opening input files: Invalid data found when processing input)'
    """
    text = str(error).strip() or type(error).__name__
    head, _, log = text.partition("=== stderr ===")
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    log_lines = [line.strip() for line in log.splitlines() if line.strip()]
    if log_lines:
        reason = f"{reason} (ffmpeg: {log_lines[-1]})"
    if len(reason) > max_chars:
        reason = reason[: max_chars - 3] + "..."
    return reason


class VideoFolder(VideoSource):
    """Frames of every video and image in a folder, in file-name order.

    Videos (``.mp4 .avi .webm .mkv .mov .gif``) are decoded with ``imageio`` (PyAV /
    Pillow plug-ins); each image file is one frame. Frames of all files are concatenated
    into one sequence, centre-cropped to the requested aspect ratio and resized.

    Args:
        path: the folder.
        max_frames: keep at most this many frames (the Distracting Control Suite and PSP
            used 2,000). ``None`` keeps all of them.
        chunk: frames decoded before each resize, bounding memory for long videos.

    Raises:
        FileNotFoundError: if the folder does not exist or holds no video or image.
        ValueError: if a file cannot be decoded, when the frames are first asked for (the
            message names the file and the decoder's reason, without ffmpeg's log).

    Examples:
        >>> import tempfile, imageio.v3 as iio
        >>> folder = tempfile.mkdtemp()
        >>> iio.imwrite(f"{folder}/a.png", np.full((32, 48, 3), 200, dtype=np.uint8))
        >>> VideoFolder(folder).frames(64, 64).shape
        torch.Size([1, 64, 64, 3])
    """

    def __init__(self, path: str | Path, max_frames: int | None = None, chunk: int = 64):
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise FileNotFoundError(
                f"Video folder {str(self.path)!r} does not exist (or is not a folder). Pass a "
                "folder of videos or images, or no folder to use the built-in procedural video."
            )
        self.files = sorted(
            p
            for p in self.path.iterdir()
            if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS
        )
        if not self.files:
            raise FileNotFoundError(
                f"Video folder {str(self.path)!r} holds no video or image; supported extensions: "
                f"{' '.join(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)}."
            )
        self.max_frames = check_int("max_frames", max_frames, minimum=1, allow_none=True)
        self.chunk = check_int("chunk", chunk, minimum=1)
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def _iter_frames(self, path: Path):
        import imageio.v3 as iio

        try:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                yield _to_rgb(np.asarray(iio.imread(path)), path)
            else:
                for frame in iio.imiter(path):
                    yield _to_rgb(np.asarray(frame), path)
        except (OSError, ValueError, RuntimeError) as error:
            raise ValueError(f"Could not read {path}: {decoder_reason(error)}") from None
        except Exception as error:  # decoders raise their own exception types
            if type(error).__module__.split(".")[0] in ("av", "PIL", "imageio"):
                raise ValueError(f"Could not read {path}: {decoder_reason(error)}") from None
            raise

    def frames(self, height: int, width: int) -> torch.Tensor:
        key = (height, width)
        if key in self._cache:
            return self._cache[key]
        out: list[torch.Tensor] = []
        count = 0
        for path in self.files:
            buffer: list[np.ndarray] = []
            for frame in self._iter_frames(path):
                if buffer and frame.shape != buffer[0].shape:
                    out.append(resize_frames(torch.from_numpy(np.stack(buffer)), height, width))
                    buffer = []
                buffer.append(frame)
                count += 1
                if len(buffer) == self.chunk:
                    out.append(resize_frames(torch.from_numpy(np.stack(buffer)), height, width))
                    buffer = []
                if self.max_frames is not None and count >= self.max_frames:
                    break
            if buffer:
                out.append(resize_frames(torch.from_numpy(np.stack(buffer)), height, width))
            if self.max_frames is not None and count >= self.max_frames:
                break
        if count == 0:
            raise ValueError(f"No frame could be decoded from the files in {str(self.path)!r}.")
        frames = torch.cat(out)
        self._cache[key] = frames
        return frames


def _pink_noise(rng: np.random.Generator, size: int, channels: int, exponent: float) -> np.ndarray:
    """Periodic noise with a ``1 / f**exponent`` amplitude spectrum, scaled to [0, 1]."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    amplitude = radius**-exponent
    amplitude[0, 0] = 0.0
    phases = rng.uniform(0, 2 * np.pi, size=(channels, size, size))
    field = np.fft.ifft2(amplitude * np.exp(1j * phases)).real
    low = field.min(axis=(1, 2), keepdims=True)
    high = field.max(axis=(1, 2), keepdims=True)
    return (field - low) / (high - low)


class ProceduralVideo(VideoSource):
    """Deterministic procedural video that needs no file: drifting natural-looking textures.

    Two periodic layers of "pink" noise (amplitude spectrum ``1/f``, like natural images)
    in random colours scroll at different speeds along smoothly turning paths, the near
    layer covering the far one where its own noise field is high (parallax, as from a
    moving car), with a few moving coloured blobs on top. Everything is drawn from
    ``numpy.random.default_rng(seed)``, so a seed gives the same video on every machine.

    Args:
        num_frames: length of the video. Defaults to 500.
        seed: seed of the video. Defaults to 0.
        speed: scroll speed of the far layer in texture pixels per frame at the 64-pixel
            scale (the near layer moves twice as fast). Defaults to 1.5.

    Examples:
        >>> video = ProceduralVideo(num_frames=8, seed=0)
        >>> frames = video.frames(64, 64)
        >>> frames.shape, frames.dtype
        (torch.Size([8, 64, 64, 3]), torch.uint8)
        >>> bool((frames[1] != frames[0]).any())  # it moves
        True
    """

    def __init__(self, num_frames: int = 500, seed: int = 0, speed: float = 1.5):
        self.num_frames = check_int("num_frames", num_frames, minimum=1)
        self.seed = seed
        self.speed = speed
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def frames(self, height: int, width: int) -> torch.Tensor:
        key = (height, width)
        if key not in self._cache:
            self._cache[key] = self._generate(height, width)
        return self._cache[key]

    def _generate(self, height: int, width: int) -> torch.Tensor:
        rng = np.random.default_rng(self.seed)
        scale = max(height, width) / 64.0
        size = 1 << int(np.ceil(np.log2(4 * max(height, width))))
        layers = []
        for depth, exponent in ((1.0, 1.0), (2.0, 1.3)):
            texture = _pink_noise(rng, size, 1, exponent)[0]
            palette = rng.uniform(0, 1, size=(3, 3))  # three colours along the noise value
            levels = np.clip(texture * 2, 0, 2)
            low = np.floor(np.minimum(levels, 1.999)).astype(int)
            frac = (levels - low)[..., None]
            colours = palette[low] * (1 - frac) + palette[low + 1] * frac
            shade = 0.6 + 0.4 * _pink_noise(rng, size, 1, 0.7)[0]
            layers.append((colours * shade[..., None], texture, depth))
        # Smoothly turning scroll path.
        angle0, turn = rng.uniform(0, 2 * np.pi), rng.uniform(0.005, 0.02)
        wobble = rng.uniform(0.02, 0.05)
        steps = np.arange(self.num_frames)
        angles = angle0 + turn * steps + 0.8 * np.sin(wobble * steps)
        path = np.cumsum(self.speed * scale * np.stack([np.sin(angles), np.cos(angles)], -1), 0)
        blobs = [
            (
                rng.uniform(0, 1, 3),  # colour
                rng.uniform(4, 10) * scale,  # radius
                rng.uniform(0, 1, 2) * (height, width),  # start
                rng.uniform(-1.5, 1.5, 2) * scale,  # velocity
            )
            for _ in range(3)
        ]
        chunks = [
            self._render(layers, blobs, path, steps[i : i + 64], size, height, width)
            for i in range(0, self.num_frames, 64)
        ]
        return torch.from_numpy(np.concatenate(chunks))

    @staticmethod
    def _render(layers, blobs, path, steps, size, height, width) -> np.ndarray:
        """Frames ``steps`` of the video, ``uint8`` ``(len(steps), height, width, 3)``."""
        rows = np.arange(height)[None, :, None]
        cols = np.arange(width)[None, None, :]
        out = None
        for colours, texture, depth in layers:
            offset = np.round(path[steps] * depth).astype(int)
            r = (rows + offset[:, 0, None, None]) % size
            c = (cols + offset[:, 1, None, None]) % size
            image = colours[r, c]
            if out is None:
                out = image
            else:  # the near layer covers the far one where its own noise is high
                cover = np.clip((texture[r, c] - 0.55) * 8, 0, 1)[..., None]
                out = out * (1 - cover) + image * cover
        yy, xx = np.mgrid[0:height, 0:width]
        for colour, radius, start, velocity in blobs:
            centres = (start + velocity * steps[:, None]) % (height, width)
            dy = yy[None] - centres[:, 0, None, None]
            dx = xx[None] - centres[:, 1, None, None]
            alpha = 0.8 * np.exp(-(dy**2 + dx**2) / (2 * radius**2))[..., None]
            out = out * (1 - alpha) + colour * alpha
        return np.clip(out * 255, 0, 255).round().astype(np.uint8)
