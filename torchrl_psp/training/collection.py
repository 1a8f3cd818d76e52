"""The recipe's collectors: in this process, in worker processes or on Ray workers.

``collector.num_workers=0`` collects in the training process, ``N`` with TorchRL's
multi-process ``Collector`` (``collector.backend=process``) or with ``N`` Ray actors
(``collector.backend=ray``, TorchRL's :class:`~torchrl.collectors.distributed.RayCollector`
behind ``Collector(backend="ray")``). The Ray path needs the ``distributed`` extra
(``pip install -e ".[distributed]"``).

On Ray, :class:`RayCollection` wraps TorchRL's collector for three things it does not do
by itself in TorchRL 0.14.1:

* it runs: ``total_frames=-1`` ("forever" for the other backends) makes ``RayCollector``
  yield nothing at all, so a bounded count far beyond any run is passed instead;
* trajectory ids are unique across workers: each Ray worker numbers its trajectories
  from 0 (the multi-process collector shares one counter between workers), so ids are
  re-labelled ``id * num_workers + worker``;
* a worker that dies stops the run with one clear :class:`CollectionWorkerDied` error that
  names the backend and the worker, after the run's state was saved (``on_worker_death``),
  instead of Ray's error from deep inside the iterator.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.collectors import Collector
from torchrl.envs import EnvBase

from torchrl_psp._torchrl_private import ray_weight_sync_timeout
from torchrl_psp.training.replay import TRAJ_KEY

__all__ = [
    "CollectionWorkerDied",
    "RayCollection",
    "RayWorkerCollector",
    "make_collector",
    "ray_init_config",
]

log = logging.getLogger(__name__)

# RayCollector loops while collected < total_frames: -1 ("forever" elsewhere) yields nothing.
_RAY_TOTAL_FRAMES = sys.maxsize

#: How long the first weight synchronisation waits for the Ray workers to connect (TorchRL's
#: own wait is 60 s, which workers starting on a machine with busy cores can exceed).
RAY_CONNECT_SECONDS = 600


class CollectionWorkerDied(RuntimeError):
    """A collection worker died: the run stopped after saving its state (resume continues it)."""


class RayWorkerCollector(Collector):
    """The collector each Ray actor runs: TorchRL's single-env ``Collector``, with a short name.

    Ray prefixes a worker's log lines with the actor's ``repr``; the ``Collector``'s is the
    whole environment and policy over hundreds of lines, printed with the first log line of
    the worker. This one is ``RayWorkerCollector(worker=i)``. Importing this module imports
    :mod:`torchrl_psp` first, which sets ``MUJOCO_GL=egl`` on a headless worker before
    ``dm_control`` is imported.
    """

    def __repr__(self) -> str:
        return f"RayWorkerCollector(worker={self.worker_idx})"

    def worker_info(self) -> dict[str, Any]:
        """Where this worker runs: its process id, host and rendering back-end."""
        import socket

        return {
            "worker": self.worker_idx,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "MUJOCO_GL": os.environ.get("MUJOCO_GL"),
        }

    def policy_checksum(self) -> float:
        """The sum of the worker's policy parameters (to check that weight updates arrive)."""
        with torch.no_grad():
            return float(sum(p.double().sum() for p in self.policy.parameters()))


def ray_init_config(num_workers: int) -> dict[str, Any]:
    """How the recipe starts Ray when no Ray runtime is initialised yet.

    With ``RAY_ADDRESS`` set, Ray joins that cluster. Otherwise a local Ray instance is
    started with one CPU per worker (each worker actor asks for one), no dashboard, and
    ``127.0.0.1`` as the node's address, so that the trainer and its workers talk over
    the loopback interface only. (Ray's own servers still listen on every interface: Ray
    has no setting for that; recent Ray versions require their token to connect.)
    """
    if os.environ.get("RAY_ADDRESS"):
        return {"address": os.environ["RAY_ADDRESS"]}
    return {
        "num_cpus": max(1, num_workers),
        "include_dashboard": False,
        "ignore_reinit_error": True,
        "_node_ip_address": "127.0.0.1",
    }


def _ray_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a lost worker (actor process, its node or its raylet gone)."""
    from ray import exceptions

    return (
        exceptions.RayActorError,
        exceptions.WorkerCrashedError,
        exceptions.NodeDiedError,
        exceptions.LocalRayletDiedError,
    )


class RayCollection:
    """TorchRL's Ray collector as the training loop uses it (see the module docstring).

    Iterating yields batches of shape ``(num_workers, frames_per_batch / num_workers)``
    with trajectory ids unique across workers. Everything else is passed on to the
    wrapped :class:`~torchrl.collectors.distributed.RayCollector`.

    Args:
        collector: the ``RayCollector`` (from ``Collector(backend="ray", ...)``).
        on_worker_death: called (to save the run's state) before :class:`CollectionWorkerDied`
            is raised.
    """

    def __init__(self, collector: Any, on_worker_death: Callable[[], None] | None = None):
        import ray

        self.collector = collector
        self.on_worker_death = on_worker_death
        self.num_workers = collector.num_collectors
        actors = collector.remote_collectors
        self.workers: list[dict[str, Any]] = ray.get([a.worker_info.remote() for a in actors])
        self._actor_ids = [actor._actor_id.hex() for actor in actors]
        for info in self.workers:
            log.info(
                "Ray collection worker %d: pid %d on %s (MUJOCO_GL=%s)",
                info["worker"],
                info["pid"],
                info["host"],
                info["MUJOCO_GL"],
            )
        # Starts the weight synchronisation now (TorchRL warns when iteration starts first);
        # workers slowed by a busy machine get RAY_CONNECT_SECONDS to connect, not 60.
        with ray_weight_sync_timeout(RAY_CONNECT_SECONDS):
            collector.update_policy_weights_()

    def __iter__(self) -> Iterator[TensorDictBase]:
        errors = _ray_errors()
        iterator = iter(self.collector)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except errors as error:
                self._worker_died(error, during="collecting")
            yield self._relabel(batch)

    def _relabel(self, batch: TensorDictBase) -> TensorDictBase:
        ids = batch.get(TRAJ_KEY)
        worker = torch.arange(self.num_workers, device=ids.device).view(-1, 1)
        batch.set(TRAJ_KEY, ids * self.num_workers + worker.expand_as(ids))
        return batch

    def _dead_workers(self, timeout: float = 30.0) -> list[tuple[int, BaseException]]:
        """The workers that do not answer because they are gone, with Ray's error for each."""
        import ray

        refs = [actor.worker_info.remote() for actor in self.collector.remote_collectors]
        ray.wait(refs, num_returns=len(refs), timeout=timeout)
        dead = []
        for index, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=0)
            except _ray_errors() as error:
                dead.append((index, error))
            except ray.exceptions.GetTimeoutError:  # busy or stuck, not known to be dead
                pass
        return dead

    def _worker_died(
        self, error: BaseException, index: int | None = None, during: str = "collecting"
    ) -> None:
        """Saves the run's state and raises :class:`CollectionWorkerDied` for ``error``."""
        if index is None:
            actor_id = getattr(error, "actor_id", None)
            if actor_id in self._actor_ids:
                index = self._actor_ids.index(actor_id)
        if index is None:
            who = "a worker"
        else:
            info = self.workers[index]
            who = f"worker {info['worker']} (pid {info['pid']} on {info['host']})"
        text = str(error).strip()
        cause = f"{type(error).__name__}: {text.splitlines()[0] if text else 'no message'}"
        saved = ""
        if self.on_worker_death is not None:
            try:
                self.on_worker_death()
                saved = " The replay and a checkpoint were saved; resume=<run dir> continues."
            except Exception as save_error:  # the error to report is the worker's
                saved = f" Saving the run's state failed too: {save_error!r}."
        message = (
            f"Collection backend 'ray': {who} died while {during} ({cause})."
            f" Stopping the run.{saved}"
        )
        log.error(message)
        raise CollectionWorkerDied(message) from None

    def policy_checksums(self) -> list[float]:
        """:meth:`RayWorkerCollector.policy_checksum` of every worker."""
        import ray

        return ray.get([a.policy_checksum.remote() for a in self.collector.remote_collectors])

    def update_policy_weights_(self, *args: Any, **kwargs: Any) -> None:
        """Sends the policy's current weights to every worker (blocking).

        Weights travel over a Gloo process group: a dead worker shows up here as Gloo's
        "Connection closed by peer" (or as Ray's error); the workers are then asked who is
        gone, and a dead one stops the run as in iteration. Other errors are raised as is.
        """
        try:
            self.collector.update_policy_weights_(*args, **kwargs)
        except Exception:
            dead = self._dead_workers()
            if not dead:
                raise
            index, death = dead[0]
            self._worker_died(death, index, during="sending policy weights")

    def shutdown(self) -> None:
        """Stops the workers (and the local Ray instance when the collector started it)."""
        try:
            self.collector.shutdown()
        except Exception as error:  # a dead worker must not hide the error that stopped us
            log.warning("Shutting down the Ray collection failed: %r", error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["collector"], name)


def make_collector(
    env: EnvBase,
    worker_fns: Sequence[Callable[[], EnvBase]],
    policy: torch.nn.Module,
    cfg: Any,
    policy_device: torch.device,
    on_worker_death: Callable[[], None] | None = None,
) -> Any:
    """The collector of the recipe's ``collector`` configuration.

    Args:
        env: the in-process collection env (``num_workers=0``).
        worker_fns: one picklable env factory per worker (``num_workers>0``).
        policy: the acting policy (its weights are sent to the workers on
            ``update_policy_weights_()``).
        cfg: the ``collector`` configuration (``num_workers``, ``backend``,
            ``frames_per_batch``).
        policy_device: where the policy runs (in each worker for the worker backends).
        on_worker_death: Ray only: saves the run's state when a worker dies.
    """
    common = dict(
        frames_per_batch=cfg.frames_per_batch,
        storing_device="cpu",
        env_device="cpu",
        policy_device=policy_device,
    )
    if cfg.num_workers == 0:
        return Collector(env, policy, total_frames=-1, **common)
    if cfg.backend != "ray":
        return Collector(
            list(worker_fns),
            policy,
            backend=cfg.backend,
            num_collectors=cfg.num_workers,
            sync=True,
            total_frames=-1,
            **common,
        )
    try:
        import ray  # noqa: F401
    except ImportError as error:
        raise ImportError(
            'collector.backend=ray needs Ray: pip install -e ".[distributed]"'
        ) from error
    collector = Collector(
        list(worker_fns),
        policy,
        backend="ray",
        num_collectors=cfg.num_workers,
        sync=True,
        total_frames=_RAY_TOTAL_FRAMES,
        backend_options={
            "collector_class": RayWorkerCollector,
            "ray_init_config": ray_init_config(cfg.num_workers),
        },
        **common,
    )
    try:
        return RayCollection(collector, on_worker_death)
    except BaseException:
        collector.shutdown()
        raise
