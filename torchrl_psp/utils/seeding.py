"""One call that seeds every random number generator a run draws from."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything"]


def seed_everything(seed: int) -> None:
    """Seeds Python's :mod:`random`, NumPy's global generator and torch (CPU and CUDA).

    The trainers call it once before they build anything, so that the same ``seed`` gives
    the same weights, the same prefill and the same replay samples.

    Args:
        seed: the run's seed.

    Examples:
        >>> import torch
        >>> from torchrl_psp.utils.seeding import seed_everything
        >>> seed_everything(3); a = torch.rand(2)
        >>> seed_everything(3); torch.equal(a, torch.rand(2))
        True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
