"""The papers' baselines on the project's pipeline: DrQ-v2 (model-free), as TorchRL components.

* :class:`RandomShift` -- DrQ-v2's image augmentation, a TorchRL transform.
* :func:`make_drqv2` -- encoder, DDPG actor with scheduled exploration, twin critics
  (:class:`DrQv2Agent`).
* :class:`DrQv2Loss` -- the critic and actor losses (n-step TD target, clipped
  target-policy noise), with :func:`nstep_transitions` (replayed windows -> n-step
  transitions).
* :class:`DrQv2Trainer` -- ``variant=drqv2`` of ``recipes/dreamer_psp.py``: the DreamerV3
  trainer's run directory, logs, checkpoints and evaluation.

Names are imported on first use; :mod:`~torchrl_psp.baselines.drqv2_config` (the
hyper-parameters and their checks) imports neither torch nor TorchRL.
"""

from torchrl_psp.utils.lazy import lazy_exports

_EXPORTS = {
    "RandomShift": "random_shift",
    "shift_images": "random_shift",
    "DRQV2_DIFFICULTY": "drqv2_config",
    "drqv2_config_errors": "drqv2_config",
    "drqv2_run_config": "drqv2_config",
    "std_schedule_steps": "drqv2_config",
    "DrQv2Agent": "drqv2_modules",
    "DrQv2Exploration": "drqv2_modules",
    "linear_std": "drqv2_modules",
    "make_drqv2": "drqv2_modules",
    "DrQv2Loss": "drqv2_loss",
    "nstep_transitions": "drqv2_nstep",
    "DrQv2WindowLoss": "drqv2_nstep",
    "DrQv2Stepper": "drqv2_stepper",
    "make_drqv2_stepper": "drqv2_stepper",
    "build_drqv2_parts": "drqv2_trainer",
    "DrQv2Trainer": "drqv2_trainer",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
