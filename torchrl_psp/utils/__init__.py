"""Small utilities shared by the library, recipes and benchmarks.

* :mod:`~torchrl_psp.utils.device` -- :func:`~torchrl_psp.utils.device.resolve_device`,
  the one rule that turns a device setting into a :class:`torch.device`.

The pictures (image grids, segment colours, panels, curves, videos) are in
:mod:`torchrl_psp.figures`.
"""
