"""Shared pytest set-up: headless rendering and a deterministic torch."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("WANDB_MODE", "offline")

import torch  # noqa: E402

import torchrl_psp  # noqa: E402, F401  (before dm_control: see torchrl_psp's docstring)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread_for_doctests(request):
    """Docstring examples run tiny models made of many small ops: on a shared 2-core machine
    one thread avoids OpenMP hand-offs that make them 10-100x slower."""
    if type(request.node).__name__ != "DoctestItem":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
