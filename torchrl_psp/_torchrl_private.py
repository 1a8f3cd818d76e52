"""Every private TorchRL name torchrl_psp relies on, behind one small module.

TorchRL 0.14 offers no public way to do the few things below, so this module reaches
into TorchRL's internals; code that needs one of them goes through here rather than
naming the private attribute itself. Each function names the
private attribute it uses; ``tests/modules/test_torchrl_private.py`` checks on tiny
models that every one of them exists and behaves as assumed, and fails loudly when a
TorchRL release changes them. The module was written against :data:`TESTED_TORCHRL`;
importing it with another TorchRL version warns once (:func:`torchrl_version_problem`).

* :func:`is_channel_rms_norm` -- ``torchrl.modules.models.model_based._DreamerV3ChannelRMSNorm``
  (the norm of :class:`~torchrl.modules.DreamerV3ImageEncoder`, whose backward pass
  :mod:`torchrl_psp.modules.encoder_vjp` writes by hand).
* :func:`posterior_logits` -- ``RSSMPosteriorV3._logits`` (the posterior's logits
  without drawing a sample).
* :func:`unimix_probs` and :func:`straight_through` -- TorchRL's private
  ``_unimix_probs`` and ``_straight_through_categorical`` have no public
  counterpart; these are written here, and tested against them.
* :func:`clear_loss_weakrefs` -- ``LossModule._clear_weakrefs``.
* :func:`serial_sub_envs` and :func:`wrapped_env` -- ``SerialEnv._envs`` and the
  ``_env`` of TorchRL's env wrappers (the ``dm_control`` environment).
* :func:`ray_weight_sync_timeout` -- ``torchrl.weight_update._ray._DIST_TIMEOUT`` (how
  long the Ray collector's weight synchronisation waits for its workers to connect).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import torch
import torchrl
from torch import nn
from torchrl.modules import RSSMPosteriorV3
from torchrl.modules.models import model_based

__all__ = [
    "TESTED_TORCHRL",
    "clear_loss_weakrefs",
    "is_channel_rms_norm",
    "posterior_logits",
    "ray_weight_sync_timeout",
    "serial_sub_envs",
    "straight_through",
    "torchrl_version_problem",
    "unimix_probs",
    "wrapped_env",
]

#: The TorchRL release series (major, minor) this module was written and tested against.
TESTED_TORCHRL = (0, 14)


def torchrl_version_problem(version: str) -> str | None:
    """What is wrong with TorchRL ``version`` for this module, or ``None`` (a 0.14.x release).

    Examples:
        >>> torchrl_version_problem("0.14.1") is None
        True
        >>> torchrl_version_problem("0.15.0")  # doctest: +ELLIPSIS
        'torchrl_psp uses private TorchRL names checked against TorchRL 0.14.x; found 0.15.0...'
    """
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is not None and (int(match[1]), int(match[2])) == TESTED_TORCHRL:
        return None
    tested = ".".join(map(str, TESTED_TORCHRL))
    return (
        f"torchrl_psp uses private TorchRL names checked against TorchRL {tested}.x; found "
        f"{version}. Run tests/modules/test_torchrl_private.py: it fails where a name changed "
        "(torchrl_psp/_torchrl_private.py is the one place to adapt)."
    )


_PROBLEM = torchrl_version_problem(torchrl.__version__)
if _PROBLEM is not None:
    warnings.warn(_PROBLEM, RuntimeWarning, stacklevel=2)


def _missing(name: str) -> RuntimeError:
    return RuntimeError(
        f"TorchRL {torchrl.__version__} has no {name}, which torchrl_psp relies on "
        f"(checked against TorchRL {'.'.join(map(str, TESTED_TORCHRL))}.x): adapt "
        "torchrl_psp/_torchrl_private.py."
    )


_CHANNEL_RMS_NORM = getattr(model_based, "_DreamerV3ChannelRMSNorm", None)


def is_channel_rms_norm(module: nn.Module) -> bool:
    """Whether ``module`` is the channel RMS norm of TorchRL's DreamerV3 image encoder.

    The exact class (no subclass, which could compute something else), with its ``eps``
    and per-channel ``weight``: ``y * rsqrt(mean_c y^2 + eps) * weight``. ``False`` when
    the TorchRL version has no such class.

    Examples:
        >>> from torchrl.modules import DreamerV3ImageEncoder
        >>> encoder = DreamerV3ImageEncoder(depth=2, mults=(1, 2))
        >>> [is_channel_rms_norm(layer) for layer in encoder.layers]
        [False, True, False, False, True, False]
    """
    return (
        _CHANNEL_RMS_NORM is not None
        and type(module) is _CHANNEL_RMS_NORM
        and hasattr(module, "eps")
        and isinstance(getattr(module, "weight", None), torch.Tensor)
    )


def posterior_logits(
    posterior: nn.Module, belief: torch.Tensor, encoded: torch.Tensor
) -> torch.Tensor:
    """The posterior's logits ``(*batch, categoricals, classes)``, no sample drawn.

    An :class:`~torchrl.modules.RSSMPosteriorV3` is asked through its private
    ``_logits`` (the method its ``forward`` and ``RSSMRolloutV3`` use); any other
    posterior is called and the first of its outputs kept.

    Examples:
        >>> posterior = RSSMPosteriorV3(
        ...     hidden_dim=8, num_categoricals=2, num_classes=3, rnn_hidden_dim=4, obs_embed_dim=5
        ... )
        >>> posterior_logits(posterior, torch.zeros(7, 4), torch.zeros(7, 5)).shape
        torch.Size([7, 2, 3])
    """
    logits = getattr(posterior, "_logits", None)
    if logits is not None:
        return logits(belief, encoded)
    if isinstance(posterior, RSSMPosteriorV3):
        raise _missing("RSSMPosteriorV3._logits")
    return posterior(belief, encoded)[0]


def unimix_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Categorical probabilities mixed with a uniform: ``(1 - u) softmax(l) + u / K``.

    The probabilities TorchRL's DreamerV3 prior and posterior sample from (its private
    ``_unimix_probs``).

    Examples:
        >>> unimix_probs(torch.tensor([0.0, 100.0]), 0.1)
        tensor([0.0500, 0.9500])
    """
    probs = torch.softmax(logits, dim=-1)
    if unimix:
        probs = (1 - unimix) * probs + unimix / probs.shape[-1]
    return probs


def straight_through(probs: torch.Tensor, sample: torch.Tensor | None = None) -> torch.Tensor:
    """A one-hot ``sample`` (the mode of ``probs`` by default) with the gradient of ``probs``.

    TorchRL's ``_straight_through_categorical`` draws the sample itself; here it is given
    (the world model's own draw), so that the value matches the world model's state.

    Examples:
        >>> probs = torch.tensor([[0.2, 0.8], [0.6, 0.4]], requires_grad=True)
        >>> straight_through(probs)
        tensor([[0., 1.],
                [1., 0.]], grad_fn=<AddBackward0>)
    """
    if sample is None:
        sample = nn.functional.one_hot(probs.argmax(-1), probs.shape[-1])
    sample = sample.detach().reshape(probs.shape).to(probs.dtype)
    return probs + (sample - probs).detach()


def clear_loss_weakrefs(loss: nn.Module, *tensordicts: Any) -> None:
    """What every TorchRL loss does at the end of ``forward`` (``LossModule._clear_weakrefs``).

    Clears the weak references of ``tensordicts`` inside :func:`torch.compile` (a no-op
    otherwise).
    """
    clear = getattr(loss, "_clear_weakrefs", None)
    if clear is None:
        raise _missing("LossModule._clear_weakrefs")
    clear(*tensordicts)


def serial_sub_envs(env: Any) -> list[Any]:
    """The sub-envs of a started :class:`~torchrl.envs.SerialEnv` (its private ``_envs``)."""
    if env.is_closed:
        env.start()
    sub_envs = getattr(env, "_envs", None)
    if sub_envs is None:
        raise _missing("SerialEnv._envs")
    return list(sub_envs)


def wrapped_env(env: Any) -> Any | None:
    """The library env inside a TorchRL wrapper (its private ``_env``), or ``None``.

    For :class:`~torchrl.envs.DMControlEnv` / :class:`~torchrl.envs.DMControlWrapper`:
    the ``dm_control`` environment, whose ``physics`` the transforms render.
    """
    return getattr(env, "_env", None)


@contextlib.contextmanager
def ray_weight_sync_timeout(seconds: float) -> Iterator[None]:
    """Lets the Ray collector's first weight synchronisation wait ``seconds`` for its workers.

    TorchRL 0.14 fixes the wait at 60 s (``torchrl.weight_update._ray._DIST_TIMEOUT``,
    read when the process group is made). On a machine whose cores are busy, Ray workers
    can take longer than that to connect, and the run would fail although nothing is
    wrong. Inside this context the sender waits up to ``seconds``; the previous value is
    restored on exit.

    Examples:
        >>> from torchrl.weight_update import _ray
        >>> with ray_weight_sync_timeout(600):
        ...     _ray._DIST_TIMEOUT.total_seconds()
        600.0
        >>> _ray._DIST_TIMEOUT.total_seconds()
        60.0
    """
    from torchrl.weight_update import _ray

    previous = getattr(_ray, "_DIST_TIMEOUT", None)
    if not isinstance(previous, timedelta):
        raise _missing("torchrl.weight_update._ray._DIST_TIMEOUT")
    _ray._DIST_TIMEOUT = timedelta(seconds=seconds)
    try:
        yield
    finally:
        _ray._DIST_TIMEOUT = previous
