"""Small utilities shared by the library, recipes and benchmarks.

* :mod:`~torchrl_psp.utils.device` -- :func:`~torchrl_psp.utils.device.resolve_device`,
  the one rule that turns a device setting into a :class:`torch.device`.
* :mod:`~torchrl_psp.utils.machine` -- :func:`~torchrl_psp.utils.machine.cpu_model`,
  the CPU's name for the records of benchmarks and runs.
* :mod:`~torchrl_psp.utils.seeding` -- :func:`~torchrl_psp.utils.seeding.seed_everything`,
  the seeding of a run (Python, NumPy, torch).

The pictures (image grids, segment colours, panels, curves, videos) are in
:mod:`torchrl_psp.figures`.
"""
