"""Compiled hot spots of a DreamerV3 agent: regional :func:`torch.compile`, eager fallback.

Compiling a whole learner update on CPU takes minutes (TorchRL's
``compile_train_step=True``: 541 s on one core, ``docs/performance.rst``), because
the RSSM and the imagination are unrolled over every time step. Most of the time the
update spends outside the convolutions is in small element-wise chains that repeat at
every step. :func:`compile_agent` compiles only those chains, each once, and leaves the
control flow (TensorDicts, the time loops, the losses, the optimiser) eager:

* the ``channel RMS norm -> SiLU`` of every stage of the image encoder and decoder
  (:func:`~torchrl_psp.modules.image_codec.channel_rms_norm_silu`), the largest
  element-wise passes of the update;
* the RSSM prior's deterministic step (block GRU and prior logits) and the posterior's
  logits, used by the world model's rollout, the imagination and the acting policy;
* the ``RMS norm -> SiLU`` of the reward, continuation, critic and actor MLPs
  (:class:`~torchrl_psp.modules.mlp.NormSiLUMLP`), evaluated on every imagined step.

Every region is a :class:`CompiledRegion`: the compiled function with the eager one
beside it. A region runs compiled only where gradients are enabled (the learner
update); acting and evaluation, under ``torch.no_grad`` and on small batches, run the
eager function, so that they add no graphs to compile. The first time compilation of
a region fails, a one-line warning names the region and the reason and the region runs
eagerly from then on; the computation is the same either way. Where the reason is an
empty library left in inductor's cache by a stopped compilation, the warning names the
file to delete. Inside an enclosing :func:`torch.compile` (TorchRL's compiled CUDA
step) a region runs its eager function, which the enclosing compilation traces.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["REGIONS", "CompiledAgent", "CompiledRegion", "compile_agent"]

#: The regions :func:`compile_agent` knows: name -> (agent attribute, attribute to replace,
#: ``dynamic`` of :func:`torch.compile`). The norm-SiLU sees one shape per codec stage
#: (static graphs, shared by encoder and decoder stages of the same shape); the RSSM
#: regions see the replay batch and the imagination batch (dynamic after the first).
#: ``"heads"`` stands for every :class:`~torchrl_psp.modules.mlp.NormSiLUMLP` of the agent
#: (reward, continuation, critic and actor MLPs, one region shared by all).
REGIONS: dict[str, tuple[str, str, bool | None]] = {
    "encoder_norm_silu": ("encoder", "norm_silu", False),
    "decoder_norm_silu": ("decoder", "norm_silu", False),
    "prior_step": ("prior", "_belief_and_logits", None),
    "posterior_logits": ("posterior", "_logits", None),
    "head_norm_silu": ("heads", "norm_silu", None),
}


def _owners(agent: Any, owner: str) -> list[Any]:
    if owner != "heads":  # none for a missing module (an agent built without decoder)
        module = getattr(agent, owner)
        return [] if module is None else [module]
    from torchrl_psp.modules.mlp import NormSiLUMLP

    found: dict[int, Any] = {}
    for name in ("world_model", "actor", "value", "continuation_model"):
        for module in getattr(agent, name).modules():
            if isinstance(module, NormSiLUMLP):
                found.setdefault(id(module), module)
    return list(found.values())


def _compile_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    dynamo = getattr(getattr(torch, "_dynamo", None), "exc", None)
    if dynamo is not None:
        errors.append(dynamo.TorchDynamoException)
    try:
        from torch._inductor import exc as inductor

        errors.append(inductor.InductorError)
    except (ImportError, AttributeError):
        pass
    return tuple(errors)


def _eager(function: Callable[..., Any]) -> Callable[..., Any]:
    return function


_LIBRARY_PATH = re.compile(r"(/\S+?\.so)\b")


def _failure_hint(message: str) -> str:
    """How to mend a failure whose ``message`` names an empty shared library, else ``""``.

    A compilation killed while it builds (a stopped run, a machine going away) can leave
    an empty ``.so`` in inductor's cache; every later compilation of the same kernel then
    fails to load it ("file too short") until the file is deleted.
    """
    for path in _LIBRARY_PATH.findall(message):
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            return (
                f". {path} is empty, left in inductor's cache by a compilation that was "
                "stopped: delete it (or set TORCHINDUCTOR_CACHE_DIR to a new folder) and "
                "the region compiles"
            )
    return ""


class CompiledRegion:
    """A function compiled with :func:`torch.compile`, with its eager version as fallback.

    Args:
        name: the region's name (in warnings and :attr:`CompiledAgent.regions`).
        eager: the function.
        **compile_kwargs: for :func:`torch.compile`.

    Attributes:
        enabled: run the compiled function (``False``: the eager one; used by the
            benchmarks to time both on the same weights).
        failure: why compilation failed (``None`` while it has not); from then on the
            region runs eagerly.

    Examples:
        >>> region = CompiledRegion("double", lambda x: 2 * x, dynamic=False)
        >>> region(torch.ones(2))
        tensor([2., 2.])
        >>> region.enabled = False  # the eager function, the same result
        >>> region(torch.ones(2))
        tensor([2., 2.])
    """

    def __init__(self, name: str, eager: Callable[..., Any], **compile_kwargs):
        self.name = name
        self.eager = eager
        self.compiled = torch.compile(eager, **compile_kwargs)
        self.enabled = True
        self.failure: str | None = None

    def __call__(self, *args, **kwargs):
        if (
            not self.enabled
            or self.failure is not None
            or not torch.is_grad_enabled()  # acting and evaluation: small batches, eager
            or torch.compiler.is_compiling()
        ):
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except _compile_errors() as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            self.failure = f"{type(error).__name__}: {first_line[:200]}"
            self.failure += _failure_hint(str(error))
            warnings.warn(
                f"torch.compile failed for {self.name}; it runs eagerly: {self.failure}",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.eager(*args, **kwargs)

    def __reduce__(self):
        # A copy (pickled to a collector worker, deep-copied) runs the eager function.
        return (_eager, (self.eager,))

    def __repr__(self) -> str:
        state = "eager (failed)" if self.failure else ("compiled" if self.enabled else "eager")
        return f"CompiledRegion({self.name!r}, {state})"


@dataclass
class CompiledAgent:
    """What :func:`compile_agent` replaced, to switch the regions or undo them.

    Attributes:
        regions: region name -> :class:`CompiledRegion`.
    """

    regions: dict[str, CompiledRegion] = field(default_factory=dict)
    _targets: list[tuple[Any, str, bool, Any]] = field(default_factory=list, repr=False)

    def set_enabled(self, enabled: bool) -> None:
        """Runs every region compiled (``True``) or eagerly (``False``)."""
        for region in self.regions.values():
            region.enabled = enabled

    @property
    def failures(self) -> dict[str, str]:
        """Regions whose compilation failed, with the reason."""
        return {name: r.failure for name, r in self.regions.items() if r.failure is not None}

    def restore(self) -> None:
        """Puts the eager functions back (the agent is as before :func:`compile_agent`)."""
        for owner, attribute, had_own, previous in reversed(self._targets):
            if had_own:
                setattr(owner, attribute, previous)
            else:
                delattr(owner, attribute)
        self.regions.clear()
        self._targets.clear()


def compile_agent(
    agent: Any,
    regions: Iterable[str] | None = None,
    **compile_kwargs,
) -> CompiledAgent:
    """Compiles the hot spots of a :class:`~torchrl_psp.modules.DreamerV3Agent` in place.

    Every module that shares the agent's encoder, decoder, prior and posterior (the
    world model, the losses, the saliency, the imagination, the acting policy) uses the
    compiled regions from then on. Compilation happens at the first call of a region
    (seconds per region on CPU; inductor's on-disk caches make a second process start in
    seconds), one graph per input shape and gradient mode.

    Args:
        agent: the agent (its ``encoder``, ``decoder``, ``prior``, ``posterior``).
        regions: names from :data:`REGIONS`; ``None``: all of them. A region whose
            module lacks the attribute (another encoder class) or is missing (the
            decoder of an agent built with ``decoder=False``) is skipped.
        **compile_kwargs: for :func:`torch.compile` (``dynamic`` defaults to the
            region's, see :data:`REGIONS`).

    Returns:
        The :class:`CompiledAgent` (its :meth:`~CompiledAgent.restore` undoes it).

    Raises:
        ValueError: an unknown region name.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> compiled = compile_agent(agent, ["encoder_norm_silu"])
        >>> compiled.regions
        {'encoder_norm_silu': CompiledRegion('encoder_norm_silu', compiled)}
        >>> compiled.restore()
        >>> agent.encoder.norm_silu.__name__
        'channel_rms_norm_silu'
    """
    names = list(REGIONS) if regions is None else list(regions)
    unknown = sorted(set(names) - set(REGIONS))
    if unknown:
        raise ValueError(f"Unknown compiled regions {unknown}; expected some of {list(REGIONS)}.")
    result = CompiledAgent()
    for name in names:
        owner_name, attribute, dynamic = REGIONS[name]
        for owner in _owners(agent, owner_name):
            eager = getattr(owner, attribute, None)
            if eager is None or isinstance(eager, CompiledRegion):
                continue
            region = result.regions.get(name)
            if region is None:  # one region for every owner (the heads share their function)
                region = CompiledRegion(name, eager, **{"dynamic": dynamic, **compile_kwargs})
                result.regions[name] = region
            had_own = attribute in vars(owner)
            result._targets.append((owner, attribute, had_own, vars(owner).get(attribute)))
            setattr(owner, attribute, region)
    return result
