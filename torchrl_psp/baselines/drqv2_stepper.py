"""DrQ-v2's optimisation step: Adam, the soft target update, and no non-finite update applied."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.objectives import SoftUpdate

from torchrl_psp.baselines.drqv2_nstep import DrQv2WindowLoss
from torchrl_psp.objectives import FiniteUpdateStepper

__all__ = ["DrQv2Stepper", "make_drqv2_stepper"]


class DrQv2Stepper(FiniteUpdateStepper):
    """The project's non-finite-safe stepper for a DrQ-v2 objective.

    :class:`~torchrl_psp.objectives.FiniteUpdateStepper`'s rule, unchanged: one
    forward/backward pass over the sum of the ``loss_*`` terms; the optimiser step and
    the soft target update are applied only when every loss term and every gradient is
    finite, otherwise skipped and counted (``skipped_update``), and
    :class:`~torchrl_psp.objectives.NonFiniteUpdateError` after ``max_consecutive_skips``
    skips in a row. DrQ-v2 has no recurrent replay context to write back, and its samples
    are kept as they are (no ``is_init`` reshaping).

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.baselines import DrQv2Loss, DrQv2WindowLoss, make_drqv2
        >>> agent = make_drqv2(Bounded(-1, 1, (1,)), (3, 16, 16), hidden_dim=8)
        >>> loss = DrQv2WindowLoss(DrQv2Loss(agent.encoder, agent.actor, agent.critic, 0.2,
        ...                        action_spec=Bounded(-1, 1, (1,))), n_step=2, frame_stack=1)
        >>> stepper = make_drqv2_stepper(loss, lr=1e-4, tau=0.01)
        >>> type(stepper.optimizer).__name__, round(stepper.target_updater.eps, 4)  # 1 - tau
        ('Adam', 0.99)
    """

    def _prepare_sample(self, sample: TensorDictBase) -> TensorDictBase:
        return sample.select(*self.loss_module.in_keys, strict=False)

    def _write_replay_context(self, sub_batch: TensorDictBase, result: TensorDictBase) -> None:
        """Nothing to hand back: DrQ-v2 has no recurrent state."""

    def warmup(self, sample: TensorDictBase) -> None:
        """Nothing to prepare: DrQ-v2's updates run eagerly."""


def make_drqv2_stepper(
    loss: DrQv2WindowLoss,
    *,
    lr: float = 1e-4,
    tau: float = 0.01,
    max_consecutive_skips: int | None = 5,
) -> DrQv2Stepper:
    """Adam (``lr``) over the encoder, actor and critic, and the target critic's soft update.

    One Adam over all three equals DrQ-v2's three Adam optimisers of the same rate:
    Adam's state is per parameter, and each loss term reaches only its own parameters
    (the actor loss reads detached features and a detached critic). The target critic
    moves by ``tau`` after every applied update (:class:`~torchrl.objectives.SoftUpdate`).
    """
    parameters = [p for p in loss.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    return DrQv2Stepper(
        loss,
        optimizer,
        SoftUpdate(loss.loss, tau=tau),
        max_consecutive_skips=max_consecutive_skips,
        compile_train_step=False,
        cudagraph=False,
    )
