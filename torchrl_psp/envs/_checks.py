"""Argument checks shared by ``make_env`` and the transforms: one clear ``ValueError`` each.

Every check names the argument, the value it got and what it expects, so that bad input
fails where it is given instead of deep inside ``dm_control``, MuJoCo or torch.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Largest image side: the offscreen framebuffer size every OpenGL 4 driver supports
#: (``GL_MAX_RENDERBUFFER_SIZE`` is at least 16384; Mesa's software rasteriser stops there).
MAX_IMAGE_SIZE = 16384


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), a ``bool`` excluded."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """``value`` as a Python ``int`` in ``[minimum, maximum]``, or ``None`` if allowed.

    Examples:
        >>> check_int("frame_skip", 2, minimum=1)
        2
        >>> check_int("frame_skip", True, minimum=1)
        Traceback (most recent call last):
        ...
        ValueError: frame_skip must be a positive int, got True (bool).
    """
    if value is None and allow_none:
        return None
    if minimum is not None and maximum is not None:
        expected = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    elif maximum is not None:
        expected = f"an int <= {maximum}"
    else:
        expected = "an int"
    if allow_none:
        expected += " or None"
    if not is_int(value):
        raise ValueError(f"{name} must be {expected}, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {expected}, got {value}.")
    return value


def check_bool(name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """``value`` as a Python ``bool`` (``True``/``False`` only), or ``None`` if allowed.

    Examples:
        >>> check_bool("grayscale", "yes")
        Traceback (most recent call last):
        ...
        ValueError: grayscale must be True or False, got 'yes' (str).
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        expected = "True, False or None" if allow_none else "True or False"
        raise ValueError(f"{name} must be {expected}, got {value!r} ({type(value).__name__}).")
    return bool(value)


def parse_image_size(image_size: Any, name: str = "image_size") -> tuple[int, int]:
    """``(height, width)`` from an int or a pair of ints, each in ``[1, MAX_IMAGE_SIZE]``.

    Examples:
        >>> parse_image_size(64), parse_image_size((48, 96))
        ((64, 64), (48, 96))
        >>> parse_image_size("64")
        Traceback (most recent call last):
        ...
        ValueError: image_size must be a positive int or a (height, width) pair of positive ints, got '64' (str).
    """
    expected = "a positive int or a (height, width) pair of positive ints"
    if is_int(image_size):
        sides = (image_size, image_size)
    elif (
        isinstance(image_size, Sequence)
        and not isinstance(image_size, (str, bytes))
        and len(image_size) == 2
        and all(is_int(side) for side in image_size)
    ):
        sides = tuple(image_size)
    else:
        raise ValueError(
            f"{name} must be {expected}, got {image_size!r} ({type(image_size).__name__})."
        )
    height, width = (int(side) for side in sides)
    if not (1 <= height <= MAX_IMAGE_SIZE and 1 <= width <= MAX_IMAGE_SIZE):
        raise ValueError(
            f"{name} must have sides in [1, {MAX_IMAGE_SIZE}] pixels ({MAX_IMAGE_SIZE}: the "
            f"largest offscreen framebuffer every OpenGL 4 driver supports), got {image_size!r}."
        )
    return height, width
