"""The learner's optimisation step: DreamerV3's optimiser, and no non-finite update ever applied."""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.objectives import DreamerV3Loss, SoftUpdate
from torchrl.trainers.algorithms import DreamerV3OptimizationStepper, DreamerV3Optimizer

__all__ = ["FiniteUpdateStepper", "NonFiniteUpdateError", "make_optimization_stepper"]


class NonFiniteUpdateError(RuntimeError):
    """Too many consecutive learner updates had a non-finite loss or gradient."""


def _loss_terms(result: TensorDictBase) -> dict[str, torch.Tensor]:
    return {
        key: value
        for key, value in result.items()
        if isinstance(key, str) and key.startswith("loss_") and isinstance(value, torch.Tensor)
    }


class FiniteUpdateStepper(DreamerV3OptimizationStepper):
    """TorchRL's DreamerV3 stepper that never applies a non-finite update.

    After the forward/backward pass of :meth:`step`, the update is applied only when
    every ``loss_*`` term and every parameter gradient is finite. Otherwise the step is
    skipped: parameters, optimiser state, the slow critic and the buffers the forward
    pass moves (return-normalisation statistics) keep the values they had before, and
    the skip is counted. The returned metrics carry ``skipped_update`` (1.0 for a
    skipped step, else 0.0).

    Two ways to skip, the same result:

    * ``sync=True`` (default on CPU): the finiteness flag is read on the host and the
      optimiser step is not run. :attr:`last_non_finite` names the offending terms
      (``"gradients"`` when every loss is finite but a gradient is not), and after
      ``max_consecutive_skips`` skips in a row :class:`NonFiniteUpdateError` is raised.
    * ``sync=False`` (default on CUDA): no host synchronisation. The step runs and every
      parameter, optimiser-state tensor and buffer is then selected with
      :func:`torch.where` between its new and its saved value. The counters
      (:attr:`skipped_updates`, :attr:`consecutive_skips`) are device tensors, read
      when asked for; :meth:`check_consecutive_skips` raises as above. The optimiser's
      host-side step counter (warm-up and bias correction) still advances by one for a
      skipped step.

    Args:
        loss_module, optimizer, target_updater: as
            :class:`~torchrl.trainers.algorithms.DreamerV3OptimizationStepper`.
        max_consecutive_skips: skips in a row before :class:`NonFiniteUpdateError`;
            ``None``: never raise.
        sync: how to skip (above); ``None`` picks from the device of the first sample.
        **kwargs: for :class:`~torchrl.trainers.algorithms.DreamerV3OptimizationStepper`.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3, synthetic_replay_sample
        >>> from torchrl_psp.objectives import make_variant_loss
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> stepper = make_optimization_stepper(make_variant_loss(agent, "dreamer"))
        >>> sample = synthetic_replay_sample(agent, 2, 4)
        >>> sample["next", "reward"][0, 0] = float("nan")
        >>> before = [p.detach().clone() for p in agent.world_model.parameters()]
        >>> metrics = stepper.step(None, sample)
        >>> float(metrics["skipped_update"]), stepper.skipped_updates, stepper.last_non_finite
        (1.0, 1, ['loss_model_reward'])
        >>> all(torch.equal(p, b) for p, b in zip(agent.world_model.parameters(), before))
        True
    """

    def __init__(
        self,
        loss_module: DreamerV3Loss,
        optimizer: torch.optim.Optimizer,
        target_updater: Any = None,
        *,
        max_consecutive_skips: int | None = 5,
        sync: bool | None = None,
        **kwargs,
    ):
        if max_consecutive_skips is not None and (
            isinstance(max_consecutive_skips, bool)
            or not isinstance(max_consecutive_skips, int)
            or max_consecutive_skips < 1
        ):
            raise ValueError(
                f"max_consecutive_skips must be a positive integer or None, "
                f"got {max_consecutive_skips!r}."
            )
        super().__init__(loss_module, optimizer, target_updater, **kwargs)
        self.max_consecutive_skips = max_consecutive_skips
        self.sync = sync
        self.last_non_finite: list[str] = []
        self._skipped: int | torch.Tensor = 0
        self._consecutive: int | torch.Tensor = 0

    # -- counters --------------------------------------------------------------------------
    @property
    def skipped_updates(self) -> int:
        """Updates skipped so far (reads the device counter when ``sync=False``)."""
        return int(self._skipped)

    @property
    def consecutive_skips(self) -> int:
        """Skipped updates since the last applied one."""
        return int(self._consecutive)

    def check_consecutive_skips(self) -> None:
        """Raises :class:`NonFiniteUpdateError` past ``max_consecutive_skips`` skips in a row."""
        limit = self.max_consecutive_skips
        if limit is not None and self.consecutive_skips >= limit:
            terms = ", ".join(self.last_non_finite) or "a loss term or a gradient"
            raise NonFiniteUpdateError(
                f"{self.consecutive_skips} consecutive learner updates were non-finite "
                f"({terms}) and were skipped; the parameters are those of the last finite "
                "update. Check the data (NaN/inf pixels, actions or rewards) and the learning "
                "rates."
            )

    # -- the step --------------------------------------------------------------------------
    def _parameters(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _finite(self, result: TensorDictBase) -> torch.Tensor:
        """One boolean: every loss term and every gradient is finite (no host sync)."""
        flags = [torch.isfinite(value).all() for value in _loss_terms(result).values()]
        gradients = [p.grad for p in self._parameters() if p.grad is not None]
        if gradients:
            # The norm of a gradient with a NaN is NaN, with an inf (and no NaN) inf.
            norms = torch._foreach_norm([g.float() for g in gradients])
            flags.append(torch.isfinite(torch.stack([n.to(flags[0].device) for n in norms])).all())
        return torch.stack(flags).all()

    @staticmethod
    def non_finite_terms(metrics: TensorDictBase) -> list[str]:
        """The ``loss_*`` entries of ``metrics`` that are not finite (``["gradients"]`` when
        every loss is finite: then a gradient was not)."""
        names = [
            key for key, value in _loss_terms(metrics).items() if not torch.isfinite(value).all()
        ]
        return names or ["gradients"]

    def step(self, trainer: Any, sub_batch: TensorDictBase) -> TensorDictBase:
        """One learner update, skipped when non-finite; returns the detached metrics."""
        if trainer is not None and trainer.loss_module is not self.loss_module:
            raise ValueError("The trainer and stepper must share the same loss module.")
        sample = self._prepare_sample(sub_batch)
        reference = sample.get(self.loss_module.in_keys[0])
        if not self._ready:
            if any(self.resolve(reference.device)):
                raise RuntimeError(
                    "Call warmup(sample) before compiled or captured learner updates "
                    "(or build the stepper with compile_train_step=False, cudagraph=False)."
                )
            self._train_step = self._forward_backward
            self._ready = True
        sync = self.sync if self.sync is not None else reference.device.type != "cuda"
        buffers = [(b, b.detach().clone()) for b in self.loss_module.buffers()]
        result = self._train_step(sample)
        if not any(p.grad is not None for p in self._parameters()):
            raise RuntimeError("The learner update produced no parameter gradients.")
        finite = self._finite(result)
        if sync:
            skipped = self._synced_step(bool(finite), result, buffers)
        else:
            skipped = self._masked_step(finite, buffers)
        self._write_replay_context(sub_batch, result)
        metrics = result.select(
            *(key for key, value in result.items() if isinstance(value, torch.Tensor))
        )
        metrics.set("skipped_update", skipped.float().reshape(()))
        return metrics

    def _write_replay_context(self, sub_batch: TensorDictBase, result: TensorDictBase) -> None:
        """Hands the update's posteriors back to the caller in ``sub_batch`` (the trainer
        writes them into the replay: DreamerV3's replay context). A subclass whose loss has
        no recurrent state overrides this with nothing."""
        key = self.loss_module.tensor_keys.replay_context
        sub_batch.set(key, result.get(key))

    def _synced_step(
        self,
        finite: bool,
        result: TensorDictBase,
        buffers: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        if finite:
            self.optimizer.step()
            if self.target_updater is not None:
                self.target_updater.step()
            self._consecutive = 0
            return torch.tensor(False)
        self.last_non_finite = self.non_finite_terms(result)
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        self.optimizer.zero_grad(set_to_none=False)
        self._skipped = int(self._skipped) + 1
        self._consecutive = int(self._consecutive) + 1
        self.check_consecutive_skips()
        return torch.tensor(True)

    def _masked_step(
        self, finite: torch.Tensor, buffers: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        parameters = self._parameters()
        with torch.no_grad():
            saved_parameters = [p.detach().clone() for p in parameters]
            saved_state = {
                id(p): {
                    k: v.clone() for k, v in self.optimizer.state[p].items() if torch.is_tensor(v)
                }
                for p in parameters
                if p in self.optimizer.state
            }
        self.optimizer.step()
        if self.target_updater is not None:
            self.target_updater.step()
        with torch.no_grad():
            for parameter, saved in zip(parameters, saved_parameters):
                parameter.copy_(torch.where(finite, parameter, saved))
            for parameter in parameters:
                state = self.optimizer.state.get(parameter, {})
                old = saved_state.get(id(parameter), {})
                for key, value in state.items():
                    if torch.is_tensor(value):
                        before = old.get(key, torch.zeros_like(value))
                        value.copy_(torch.where(finite, value, before))
            # The slow critic and the forward pass's statistics are buffers.
            for buffer, saved in buffers:
                buffer.copy_(torch.where(finite, buffer, saved))
        skipped = ~finite
        if not torch.is_tensor(self._skipped):
            self._skipped = torch.tensor(int(self._skipped), device=finite.device)
            self._consecutive = torch.tensor(int(self._consecutive), device=finite.device)
        self._skipped = self._skipped + skipped.long()
        self._consecutive = (self._consecutive + 1) * skipped.long()
        return skipped


def _parameter_groups(
    loss: DreamerV3Loss, lr: float, actor_lr: float | None, critic_lr: float | None
) -> list[dict[str, Any]]:
    """One optimiser group per learning rate: world model (+ heads), actor, critic."""
    actor = list(loss.actor_loss.actor_model.parameters())
    critic = list(loss.value_loss.value_model.parameters())
    taken = {id(p) for p in actor + critic}
    rest = [p for p in loss.parameters() if id(p) not in taken]
    groups = [{"params": rest, "lr": lr}]
    for params, group_lr in ((actor, actor_lr), (critic, critic_lr)):
        params = [p for p in params if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr if group_lr is None else group_lr})
    return groups


def make_optimization_stepper(
    loss: DreamerV3Loss,
    *,
    lr: float = 4e-5,
    actor_lr: float | None = None,
    critic_lr: float | None = None,
    warmup_steps: int = 1000,
    agc: float = 0.3,
    slow_critic_tau: float = 0.02,
    max_consecutive_skips: int | None = 5,
    **stepper_kwargs,
) -> FiniteUpdateStepper:
    """DreamerV3's optimiser over every parameter of ``loss`` (heads included) and its stepper.

    One :class:`~torchrl.trainers.algorithms.DreamerV3Optimizer` (adaptive gradient
    clipping, RMS scaling, momentum, warm-up) owns world model, auxiliary heads,
    actor and critic; a :class:`~torchrl.objectives.SoftUpdate` moves the slow critic.
    The stepper (:class:`FiniteUpdateStepper`) skips every update whose loss or
    gradient is not finite.

    Args:
        loss: the learner objective (e.g. from :func:`make_variant_loss`).
        lr: learning rate (of every parameter not in the actor or the critic).
        actor_lr: learning rate of the actor; ``None``: ``lr``.
        critic_lr: learning rate of the critic; ``None``: ``lr``.
        warmup_steps: learning-rate warm-up steps.
        agc: adaptive gradient clipping ratio.
        slow_critic_tau: rate of the slow critic.
        max_consecutive_skips: non-finite updates in a row before
            :class:`NonFiniteUpdateError`; ``None``: never.
        **stepper_kwargs: for :class:`FiniteUpdateStepper` (``sync``) and
            :class:`~torchrl.trainers.algorithms.DreamerV3OptimizationStepper`.
            ``compile_train_step`` and ``cudagraph`` default to ``False`` here (TorchRL's
            default compiles and captures on CUDA, which the PSP and SD losses, with
            data-dependent shapes and an inner ``torch.autograd.grad``, are not tested
            with); pass ``True`` to try them.

    Returns:
        The stepper (``.optimizer``, ``.target_updater``); call ``stepper.step(None, sample)``.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> from torchrl_psp.objectives import make_variant_loss
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> stepper = make_optimization_stepper(make_variant_loss(agent, "dreamer"))
        >>> type(stepper.optimizer).__name__
        'DreamerV3Optimizer'
    """
    stepper_kwargs.setdefault("compile_train_step", False)
    stepper_kwargs.setdefault("cudagraph", False)
    optimizer = DreamerV3Optimizer(
        _parameter_groups(loss, lr, actor_lr, critic_lr), lr=lr, agc=agc, warmup_steps=warmup_steps
    )
    target_updater = SoftUpdate(loss.value_loss, tau=slow_critic_tau)
    return FiniteUpdateStepper(
        loss,
        optimizer,
        target_updater,
        max_consecutive_skips=max_consecutive_skips,
        **stepper_kwargs,
    )
