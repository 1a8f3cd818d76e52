"""How the learner update runs: ``optim.compile`` of the recipe, decided in one place.

=============  =====================================================================
``eager``      no compilation.
``regions``    :func:`~torchrl_psp.modules.compile_agent`: the agent's hot element-wise
               chains (norm-SiLU of the image codec, RSSM prior step, posterior logits)
               compiled once each, the rest eager. Every variant; seconds to compile.
``step``       TorchRL's compiled and CUDA-graph captured update
               (``compile_train_step=True, cudagraph=True``). CUDA only, and only for
               the variants tested under it (``VariantSpec.compile_on_cuda``).
``auto``       ``step`` where it applies, else ``regions`` (the default).
=============  =====================================================================

``true`` and ``false`` are read as ``step`` and ``eager`` (their meaning in runs
recorded before ``regions`` existed). On CPU every execution also calls
:func:`~torchrl_psp.utils.memory.retain_freed_memory` (``build_run_parts`` does).

This module imports nothing heavy, so that the configuration checks can read it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMPILE_SETTINGS", "EXECUTIONS", "compile_setting_error", "learner_execution"]

#: The executions of a learner update.
EXECUTIONS = ("eager", "regions", "step")
#: The values ``optim.compile`` accepts.
COMPILE_SETTINGS = ("auto", *EXECUTIONS, True, False)


def _normalised(setting: Any) -> Any:
    if isinstance(setting, str) and setting.lower() in ("true", "false"):
        return setting.lower() == "true"
    return setting


def compile_setting_error(setting: Any, device_type: str, variant: str) -> str | None:
    """Why ``optim.compile=setting`` cannot run on ``device_type`` for ``variant``, or ``None``.

    Examples:
        >>> compile_setting_error("regions", "cpu", "psp") is None
        True
        >>> compile_setting_error("fast", "cpu", "psp")
        "optim.compile must be one of auto, eager, regions, step, true, false; got 'fast'."
        >>> compile_setting_error("step", "cpu", "dreamer")
        'optim.compile=step compiles and captures the update with CUDA graphs: it needs device=cuda (use regions or auto on cpu).'
    """
    from torchrl_psp.variants import variant_spec

    setting = _normalised(setting)
    if (
        setting not in COMPILE_SETTINGS
        or isinstance(setting, (int, float))
        and not isinstance(setting, bool)
    ):
        shown = ", ".join(str(value).lower() for value in COMPILE_SETTINGS)
        return f"optim.compile must be one of {shown}; got {setting!r}."
    if setting in ("step", True):
        if device_type != "cuda":
            return (
                "optim.compile=step compiles and captures the update with CUDA graphs: it "
                f"needs device=cuda (use regions or auto on {device_type})."
            )
        if not variant_spec(variant).compile_on_cuda:
            return (
                f"optim.compile=step is tested only for the variants with compile_on_cuda "
                f"(not {variant}); use regions or auto."
            )
    return None


def learner_execution(setting: Any, device_type: str, variant: str) -> str:
    """The execution (one of :data:`EXECUTIONS`) of ``optim.compile=setting``.

    Raises:
        ValueError: a setting :func:`compile_setting_error` refuses.

    Examples:
        >>> learner_execution("auto", "cpu", "psp"), learner_execution("auto", "cuda", "dreamer")
        ('regions', 'step')
        >>> learner_execution("auto", "cuda", "sd_gt"), learner_execution(False, "cpu", "psp")
        ('regions', 'eager')
    """
    from torchrl_psp.variants import variant_spec

    error = compile_setting_error(setting, device_type, variant)
    if error is not None:
        raise ValueError(error)
    setting = _normalised(setting)
    if setting == "auto":
        step = device_type == "cuda" and variant_spec(variant).compile_on_cuda
        return "step" if step else "regions"
    return {True: "step", False: "eager"}.get(setting, setting)
