"""A least-recently-used cache of per-frame results keyed on the frame's bytes."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch

__all__ = ["FrameCache"]


class FrameCache:
    """Maps frames (by a hash of their bytes, shape and dtype) to CPU tensors.

    A repeated frame (an env that does not move, a reset state, a frame seen again when
    a replay buffer is transformed) costs one hash instead of a model call. The key is a
    128-bit BLAKE2b digest of the raw bytes, so equal frames always hit and a collision
    between different frames is practically impossible.

    Args:
        max_frames: capacity; the least recently used entry is evicted beyond it. ``0``
            disables the cache.

    Examples:
        >>> cache = FrameCache(max_frames=2)
        >>> frame = torch.zeros(4, 4, 3, dtype=torch.uint8)
        >>> key = cache.key(frame.numpy())
        >>> cache.get(key) is None
        True
        >>> cache.put(key, torch.ones(4, 4))
        >>> cache.get(key).sum().item(), cache.hits, cache.misses
        (16.0, 1, 1)
    """

    def __init__(self, max_frames: int = 4096):
        if max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}.")
        self.max_frames = int(max_frames)
        self._entries: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """Whether the cache stores anything."""
        return self.max_frames > 0

    @staticmethod
    def key(frame: np.ndarray) -> bytes:
        """The cache key of one frame."""
        frame = np.ascontiguousarray(frame)
        digest = hashlib.blake2b(frame.data, digest_size=16)
        digest.update(repr((frame.shape, frame.dtype.str)).encode())
        return digest.digest()

    def get(self, key: bytes) -> torch.Tensor | None:
        """The stored result, or ``None``; counts a hit or a miss."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: bytes, value: torch.Tensor) -> None:
        """Stores ``value`` (kept on the CPU) under ``key``."""
        if not self.enabled:
            return
        self._entries[key] = value.detach().cpu()
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_frames:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Empties the cache and resets the counters."""
        self._entries.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={len(self)}/{self.max_frames}, hits={self.hits}, "
            f"misses={self.misses})"
        )
