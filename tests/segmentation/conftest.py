"""Fixtures of the segmentation tests: a tiny random SAM, synthetic frames and DMC renders."""

from __future__ import annotations

import pytest
import torch

from torchrl_psp.segmentation import build_tiny_sam


@pytest.fixture(scope="session")
def tiny_sam():
    """Tiny random SAM at encoder input 128 (8x8 embedding grid) on the CPU."""
    return build_tiny_sam(seed=0, image_size=128, device="cpu")


@pytest.fixture(scope="session")
def frames():
    """Random uint8 frames (3, 32, 32, 3) with a bright square."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3, 32, 32, 3), generator=generator, dtype=torch.uint8)
    x[:, 8:20, 10:22] = torch.tensor([230, 120, 40], dtype=torch.uint8)
    return x
