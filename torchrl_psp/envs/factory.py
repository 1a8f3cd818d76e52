"""``make_env``: distracted DeepMind Control environments in one call."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torchrl.envs import (
    Compose,
    DMControlWrapper,
    DoubleToFloat,
    ExcludeTransform,
    Transform,
    TransformedEnv,
)

from torchrl_psp.envs._checks import check_bool, check_int, parse_image_size
from torchrl_psp.envs._physics import ensure_framebuffer
from torchrl_psp.envs.compositing import COMPOSITING_MODES
from torchrl_psp.envs.gt_segmentation import GroundTruthSegmentation
from torchrl_psp.envs.pixels import MujocoPixels
from torchrl_psp.envs.reafferent import ReafferentBackground
from torchrl_psp.envs.video import VideoBackground
from torchrl_psp.envs.video_sources import VideoSource

__all__ = ["make_env", "PAPER_TASKS", "DISTRACTORS", "available_tasks"]

#: The tasks of the two papers (PSP: cheetah-run, hopper-stand; SD: six DMC tasks).
PAPER_TASKS = (
    ("cheetah", "run"),
    ("hopper", "stand"),
    ("walker", "run"),
    ("reacher", "easy"),
    ("cartpole", "swingup"),
    ("cartpole", "swingup_sparse"),
    ("finger", "spin"),
)
DISTRACTORS = ("none", "reafferent", "video")
SEGMENTATIONS = ("none", "gt")

#: Camera of each domain (SPEC §1: camera 0, camera 2 for quadruped).
_CAMERAS = {"quadruped": 2}
#: Domains whose camera looks down on the floor and sees no sky: there the floor is the
#: background, and backgrounds replace it by default.
FLOOR_BACKGROUND_DOMAINS = ("reacher", "manipulator", "point_mass", "swimmer", "stacker")


def available_tasks() -> list[tuple[str, str]]:
    """Every ``(domain, task)`` pair of ``dm_control.suite``."""
    from dm_control import suite

    return list(suite.ALL_TASKS)


def _check_task(domain: str, task: str) -> None:
    tasks = available_tasks()
    if (domain, task) in tasks:
        return
    domains = sorted({d for d, _ in tasks})
    if domain not in domains:
        raise ValueError(f"Unknown DeepMind Control domain {domain!r}. Valid domains: {domains}.")
    valid = sorted(t for d, t in tasks if d == domain)
    raise ValueError(f"Unknown task {task!r} of domain {domain!r}. Valid tasks: {valid}.")


def make_env(
    domain: str,
    task: str,
    *,
    distractor: str = "none",
    segmentation: str | Transform = "none",
    image_size: int | tuple[int, int] = 64,
    frame_skip: int = 2,
    seed: int = 0,
    compositing: str = "segmentation",
    replace_floor: bool | None = None,
    video_source: str | Path | VideoSource | None = None,
    grayscale: bool = False,
    max_video_frames: int | None = None,
    reafferent_seed: int = 0,
    camera_id: int | None = None,
    fast_render: bool | None = None,
    pixels_only: bool = True,
) -> TransformedEnv:
    """A DeepMind Control task with pixels, an optional distractor and segmentation.

    The env is ``TransformedEnv(DMControlWrapper(suite.load(domain, task)), ...)`` with, in
    order: :class:`~torchrl_psp.envs.MujocoPixels` (``"pixels"``, ``uint8``
    ``(H, W, 3)``, rendered once per step), :class:`~torchrl_psp.envs.GroundTruthSegmentation`
    (``"segments"``, ``"task_mask"``) if ``segmentation="gt"``, the background
    transform of ``distractor``, a learned segmenter if ``segmentation`` is a transform
    (it then sees the distracted pixels), and ``DoubleToFloat`` (DMC's float64 rewards
    and states become float32).

    Args:
        domain, task: a ``dm_control.suite`` task, e.g. ``("cheetah", "run")``.
        distractor: ``"none"``, ``"reafferent"`` (:class:`~torchrl_psp.envs.ReafferentBackground`)
            or ``"video"`` (:class:`~torchrl_psp.envs.VideoBackground`).
        segmentation: ``"none"``, ``"gt"``, or a segmentation transform (e.g. from
            :mod:`torchrl_psp.segmentation`) appended after the distractor.
        image_size: an int (square images) or a ``(height, width)`` pair of ints, each
            side in ``[1, MAX_IMAGE_SIZE]`` (16384). Sizes above the model's offscreen
            framebuffer (640x480 in DMC) grow it. Defaults to 64.
        frame_skip: action repeat, a positive int. Defaults to 2 (DreamerV3's DMC setting).
        seed: seed of the task (initial states) and of the video start frames, an int in
            ``[0, 2**32 - 1]``.
        compositing: ``"segmentation"`` (exact, default), ``"skybox"`` or ``"colorkey"``;
            see :mod:`torchrl_psp.envs.compositing`. Distractors only.
        replace_floor: let the background replace the floor too (``"segmentation"``
            compositing). ``None``: only for domains whose camera sees no sky
            (:data:`FLOOR_BACKGROUND_DOMAINS`, e.g. reacher).
        video_source: folder of videos/images, a :class:`~torchrl_psp.envs.VideoSource`,
            or ``None`` for the built-in procedural video. ``distractor="video"`` only.
        grayscale: grey video frames (PSP's setting). ``distractor="video"`` only.
        max_video_frames: keep at most this many frames of the folder (a positive int).
            ``distractor="video"`` only.
        reafferent_seed: seed of the reafferent colour grids (the environment's identity),
            an int >= 0. ``distractor="reafferent"`` only.
        camera_id: camera, an int from -1 (MuJoCo's free camera) to the model's number of
            cameras minus one; ``None`` uses 0 (2 for quadruped).
        fast_render: small shadow map and no multisampling (see
            :func:`~torchrl_psp.envs.set_fast_rendering`). ``None``: on unless CUDA is
            available (software rendering is the slow case).
        pixels_only: drop DMC's state observations.

    Returns:
        the :class:`~torchrl.envs.TransformedEnv`.

    Raises:
        ValueError: at construction, for any argument of the wrong type or out of range
            (the message names the argument, its value and what is expected; ``bool`` is
            not accepted as an int), and for an argument the chosen distractor does not
            use when it is given a value other than its default (``compositing`` other
            than ``"segmentation"`` or ``replace_floor=True`` without a distractor;
            ``video_source``, ``grayscale=True`` or ``max_video_frames`` without
            ``distractor="video"``; a non-zero ``reafferent_seed`` without
            ``distractor="reafferent"``; ``replace_floor=True`` with a compositing other
            than ``"segmentation"``). Passing the default value is always accepted.

    Examples:
        >>> env = make_env("cheetah", "run", distractor="reafferent", segmentation="gt")
        >>> td = env.rollout(2)
        >>> td["next", "pixels"].shape, td["next", "segments"].shape, td["next", "reward"].dtype
        (torch.Size([2, 64, 64, 3]), torch.Size([2, 64, 64]), torch.float32)
        >>> make_env("cheetah", "run", compositing="skybox")
        Traceback (most recent call last):
        ...
        ValueError: make_env got arguments that distractor='none' does not use: compositing='skybox' (used by distractor 'reafferent' or 'video'). Drop them or choose a distractor that uses them.
    """
    from dm_control import suite

    for name, value in (("domain", domain), ("task", task)):
        if not isinstance(value, str):
            raise ValueError(
                f"{name} must be a str naming a dm_control.suite {name}, got {value!r} "
                f"({type(value).__name__})."
            )
    _check_task(domain, task)
    if not isinstance(distractor, str) or distractor not in DISTRACTORS:
        raise ValueError(f"distractor must be one of {DISTRACTORS}, got {distractor!r}.")
    if not isinstance(segmentation, Transform) and (
        not isinstance(segmentation, str) or segmentation not in SEGMENTATIONS
    ):
        raise ValueError(
            f"segmentation must be one of {SEGMENTATIONS} or a segmentation transform, "
            f"got {segmentation!r}."
        )
    height, width = parse_image_size(image_size)
    frame_skip = check_int("frame_skip", frame_skip, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    if not isinstance(compositing, str) or compositing not in COMPOSITING_MODES:
        raise ValueError(f"compositing must be one of {COMPOSITING_MODES}, got {compositing!r}.")
    replace_floor = check_bool("replace_floor", replace_floor, allow_none=True)
    if video_source is not None and not isinstance(video_source, (str, PathLike, VideoSource)):
        raise ValueError(
            "video_source must be a folder path (str or Path), a VideoSource or None, got "
            f"{video_source!r} ({type(video_source).__name__})."
        )
    grayscale = check_bool("grayscale", grayscale)
    max_video_frames = check_int("max_video_frames", max_video_frames, minimum=1, allow_none=True)
    reafferent_seed = check_int("reafferent_seed", reafferent_seed, minimum=0)
    camera_id = check_int("camera_id", camera_id, minimum=-1, allow_none=True)
    fast_render = check_bool("fast_render", fast_render, allow_none=True)
    pixels_only = check_bool("pixels_only", pixels_only)
    check_unused_arguments(
        distractor,
        compositing=compositing,
        replace_floor=replace_floor,
        video_source=video_source,
        grayscale=grayscale,
        max_video_frames=max_video_frames,
        reafferent_seed=reafferent_seed,
    )

    if camera_id is None:
        camera_id = _CAMERAS.get(domain, 0)
    if fast_render is None:
        fast_render = not torch.cuda.is_available()
    if replace_floor is None:
        replace_floor = domain in FLOOR_BACKGROUND_DOMAINS

    dm_env = suite.load(domain, task, task_kwargs={"random": seed})
    num_cameras = int(dm_env.physics.model.ncam)
    if camera_id >= num_cameras:
        raise ValueError(
            f"camera_id must be an int in [-1, {num_cameras - 1}] for domain {domain!r} "
            f"(-1: MuJoCo's free camera; the model has {num_cameras} cameras), got {camera_id}."
        )
    if distractor != "none" and compositing == "skybox":
        _shrink_skybox(dm_env, domain, max(height, width))
    # Sizes above the model's offscreen framebuffer (640x480 in DMC) need a larger one; set
    # it before the first render so that no rendering context has to be rebuilt.
    ensure_framebuffer(dm_env.physics, height, width)
    base = DMControlWrapper(dm_env, from_pixels=False, frame_skip=frame_skip)
    transforms: list[Transform] = []
    if pixels_only:
        state_keys = list(base.observation_spec.keys(True, True))
        transforms.append(ExcludeTransform(*state_keys))
    transforms.append(
        MujocoPixels(image_size=(height, width), camera_id=camera_id, fast=fast_render)
    )
    if segmentation == "gt":
        transforms.append(GroundTruthSegmentation())
    background_kwargs = dict(compositing=compositing, replace_floor=replace_floor)
    if distractor == "reafferent":
        transforms.append(ReafferentBackground(seed=reafferent_seed, **background_kwargs))
    elif distractor == "video":
        transforms.append(
            VideoBackground(
                video_source,
                grayscale=grayscale,
                max_frames=max_video_frames,
                seed=seed,
                **background_kwargs,
            )
        )
    if isinstance(segmentation, Transform):
        transforms.append(segmentation)
    transforms.append(DoubleToFloat())
    env = TransformedEnv(base, Compose(*transforms))
    env.set_seed(seed)
    return env


def check_unused_arguments(distractor: str, **arguments: Any) -> None:
    """Refuses arguments given a non-default value that the chosen distractor ignores.

    The default values (``compositing="segmentation"``, ``replace_floor=None`` or
    ``False``, ``video_source=None``, ``grayscale=False``, ``max_video_frames=None``,
    ``reafferent_seed=0``) always pass, so that a caller can forward a whole config.
    """
    backgrounds = "distractor 'reafferent' or 'video'"
    rules = (
        ("compositing", arguments["compositing"] != "segmentation", ("reafferent", "video")),
        ("replace_floor", arguments["replace_floor"] is True, ("reafferent", "video")),
        ("video_source", arguments["video_source"] is not None, ("video",)),
        ("grayscale", arguments["grayscale"], ("video",)),
        ("max_video_frames", arguments["max_video_frames"] is not None, ("video",)),
        ("reafferent_seed", arguments["reafferent_seed"] != 0, ("reafferent",)),
    )
    unused = []
    for name, given, users in rules:
        if given and distractor not in users:
            used_by = backgrounds if len(users) == 2 else f"distractor {users[0]!r}"
            unused.append(f"{name}={arguments[name]!r} (used by {used_by})")
    if unused:
        raise ValueError(
            f"make_env got arguments that distractor={distractor!r} does not use: "
            f"{', '.join(unused)}. Drop them or choose a distractor that uses them."
        )
    if arguments["replace_floor"] is True and arguments["compositing"] != "segmentation":
        raise ValueError(
            f"replace_floor=True only applies to compositing='segmentation', got "
            f"compositing={arguments['compositing']!r} (skybox shows the floor "
            "semi-transparent, colorkey replaces every blue pixel). Drop replace_floor."
        )


def _shrink_skybox(dm_env, domain: str, size: int) -> None:
    """Reloads the model with a ``size``-pixel skybox so that per-step uploads are cheap.

    DMC's skybox texture is 800x800 per face (11.5 MB to upload on every step); the
    background written into it only needs the resolution of the rendered frame.
    """
    import re

    from dm_control import suite

    module = getattr(suite, domain)
    xml, assets = module.get_model_and_assets()
    skybox_files = [name for name, text in assets.items() if b'type="skybox"' in _as_bytes(text)]
    if not skybox_files:
        return
    for name in skybox_files:
        text = _as_bytes(assets[name]).decode()
        text = re.sub(r'(<texture[^>]*type="skybox"[^>]*?)width="\d+"', rf'\1width="{size}"', text)
        text = re.sub(
            r'(<texture[^>]*type="skybox"[^>]*?)height="\d+"', rf'\1height="{size}"', text
        )
        assets = {**assets, name: text.encode()}
    dm_env.physics.reload_from_xml_string(xml, assets)


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
