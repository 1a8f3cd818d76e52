"""Fixtures shared by the unit tests: one torch thread, a tiny pixel DreamerV3 agent."""

from __future__ import annotations

import pytest
import torch
from torchrl.data import Bounded

from torchrl_psp.modules import make_dreamer_v3


@pytest.fixture(autouse=True)
def _one_thread():
    """Unit tests run tiny models made of many small ops: on a shared 2-core machine one
    thread avoids OpenMP hand-offs that make them much slower. Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_tiny_agent(**options):
    """Tiny agent (2-d actions, 16x16 RGB images) with non-trivial random weights, seed 0;
    ``options`` go to ``make_dreamer_v3`` (e.g. ``decoder=False``)."""
    torch.manual_seed(0)
    agent = make_dreamer_v3(
        Bounded(-1, 1, (2,)),
        (3, 16, 16),
        preset="tiny",
        image_mults=(1, 2),
        device="cpu",
        **options,
    )
    with torch.no_grad():
        # Default heads start with near-zero outputs; random weights make gradients non-trivial.
        for parameter in agent.actor.parameters():
            parameter.normal_(0.0, 0.5)
        for module in agent.encoder.modules():
            if hasattr(module, "eps") and hasattr(module, "weight"):
                module.weight.uniform_(0.5, 1.5)
    return agent


@pytest.fixture
def tiny_agent():
    """Tiny agent (2-d actions, 16x16 RGB images) with non-trivial random weights."""
    return make_tiny_agent()
