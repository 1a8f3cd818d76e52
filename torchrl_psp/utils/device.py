"""The one rule that turns a ``device`` argument into a :class:`torch.device`."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(
    device: torch.device | str | None = "auto", *, require_available: bool = False
) -> torch.device:
    """Returns ``device`` as a :class:`torch.device`; ``"auto"``/``None`` picks CUDA when present.

    Args:
        device: a device or its name; ``"auto"`` or ``None`` is CUDA when available, else
            the CPU.
        require_available: refuse a CUDA device on a machine without CUDA (otherwise it
            is returned, and fails where it is first used).

    Raises:
        ValueError: with ``require_available``, for a CUDA device without CUDA.
        RuntimeError: for a name that is no device (``torch.device``'s error).

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("auto").type in ("cpu", "cuda")
        True
        >>> resolve_device(None) == resolve_device("auto")
        True
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if require_available and device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device} was asked for, but CUDA is not available here.")
    return device
