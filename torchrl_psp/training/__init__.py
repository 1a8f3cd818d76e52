"""The pieces of the training recipe (``recipes/dreamer_psp.py``), usable on their own.

* :func:`make_training_env` -- a distracted DMC task as the DreamerV3 agent reads it.
* :class:`SequenceReplay` -- on-disk replay of fixed-length sequences, resumable.
* :class:`DreamerTrainer` -- collect -> replay -> updates at a replay ratio -> evaluation,
  with checkpoints, logging, figures and videos.
* :func:`validate_config` -- every configuration error before any training.
"""

from torchrl_psp.training.checkpoint import load_checkpoint, save_checkpoint
from torchrl_psp.training.config import (
    SEGMENTERS,
    ConfigError,
    resolve_device,
    validate_config,
)
from torchrl_psp.training.env import make_segmenter, make_training_env
from torchrl_psp.training.evaluation import EvaluationResult, evaluate_policy
from torchrl_psp.training.loggers import RunLogger
from torchrl_psp.training.replay import SequenceReplay
from torchrl_psp.training.trainer import DreamerTrainer

__all__ = [
    "SEGMENTERS",
    "ConfigError",
    "DreamerTrainer",
    "EvaluationResult",
    "RunLogger",
    "SequenceReplay",
    "evaluate_policy",
    "load_checkpoint",
    "make_segmenter",
    "make_training_env",
    "resolve_device",
    "save_checkpoint",
    "validate_config",
]
