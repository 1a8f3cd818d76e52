"""The pieces of the training recipe (``recipes/dreamer_psp.py``), usable on their own.

* :func:`make_training_env` -- a distracted DMC task as the DreamerV3 agent reads it.
* :class:`SequenceReplay` -- on-disk replay of fixed-length sequences, resumable.
* :class:`DreamerTrainer` -- collect -> replay -> updates at a replay ratio -> evaluation,
  with checkpoints, logging, figures and videos.
* :func:`validate_config` -- every configuration error before any training.

The modules, one job each: ``trainer`` (the loop), ``collection`` (the collector),
``env``, ``replay``, ``evaluation``, ``checkpoint``, ``loggers``, ``config`` (checks,
resume rule, device) and ``lock`` (one process per run directory). The pictures are in
:mod:`torchrl_psp.figures`, the studies of many runs in :mod:`torchrl_psp.study`.

Names are imported on first use: ``config`` and ``lock`` import neither torch nor
TorchRL, and their light users must not pay for them -- :mod:`torchrl_psp.study` reads
:data:`~torchrl_psp.training.config.RESUMABLE`, and the recipe locks a run directory
before Hydra starts. Importing the package has no side effects (nothing is rendered or
built).
"""

from torchrl_psp.utils.lazy import lazy_exports

_EXPORTS = {
    "DamagedCheckpointError": "checkpoint",
    "CollectionWorkerDied": "collection",
    "make_collector": "collection",
    "load_checkpoint": "checkpoint",
    "load_latest_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "RESUMABLE": "config",
    "SEGMENTERS": "config",
    "ConfigError": "config",
    "load_run_config": "config",
    "config_errors": "config",
    "resolve_device": "config",
    "resume_config": "config",
    "validate_config": "config",
    "make_segmenter": "env",
    "make_training_env": "env",
    "EvaluationResult": "evaluation",
    "evaluate_policy": "evaluation",
    "RunLogger": "loggers",
    "RunDirectoryBusyError": "lock",
    "lock_run_directory": "lock",
    "SequenceReplay": "replay",
    "OpenedRun": "parts",
    "RunParts": "parts",
    "build_run_parts": "parts",
    "open_run": "parts",
    "open_run_for_replay_batches": "parts",
    "updates_due": "parts",
    "DreamerTrainer": "trainer",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
