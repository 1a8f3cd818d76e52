"""One logging front for the recipe: CSV always, wandb (offline by default), TensorBoard."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EPISODE_COLUMNS", "RunLogger"]

#: The columns of ``<run_dir>/logs/episodes.csv`` (:meth:`RunLogger.episode`).
EPISODE_COLUMNS = ("time", "env_steps", "agent_steps", "updates", "return", "length")


class RunLogger:
    """Sends scalars, images and videos to every configured TorchRL logger.

    * CSV (:class:`~torchrl.record.loggers.CSVLogger`): always, under
      ``<run_dir>/logs/scalars/<name>.csv`` as ``step,value`` lines, appended on resume.
    * wandb (:class:`~torchrl.record.loggers.WandbLogger`): ``wandb="offline"`` (default,
      no account needed: ``wandb sync`` uploads later), ``"online"``, or ``"disabled"``.
    * TensorBoard: with ``tensorboard=True`` (needs the ``tensorboard`` package).
    * Every finished training episode (:meth:`episode`): one line of
      ``<run_dir>/logs/episodes.csv`` (``time,env_steps,agent_steps,updates,return,length``,
      ``time`` in Unix seconds), flushed at once and appended on resume, so that a run
      stopped at a wall-clock budget keeps every episode it finished.

    Args:
        run_dir: the run directory.
        run_name: name of the run in wandb / TensorBoard.
        wandb: ``"offline"``, ``"online"`` or ``"disabled"``.
        tensorboard: also log to TensorBoard.
        project: wandb project.
        config: hyper-parameters logged once.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        run_name: str,
        *,
        wandb: str = "offline",
        tensorboard: bool = False,
        project: str = "torchrl-psp",
        config: dict[str, Any] | None = None,
    ):
        from torchrl.record.loggers import CSVLogger

        if wandb not in ("offline", "online", "disabled"):
            raise ValueError(f"wandb must be offline, online or disabled; got {wandb!r}.")
        self.run_dir = Path(run_dir)
        self.loggers = [CSVLogger(exp_name="logs", log_dir=str(self.run_dir))]
        if wandb != "disabled":
            from torchrl.record.loggers import WandbLogger

            os.environ.setdefault("WANDB_SILENT", "true")
            self.loggers.append(
                WandbLogger(
                    exp_name=run_name,
                    offline=wandb == "offline",
                    save_dir=str(self.run_dir),
                    project=project,
                    id=run_name,
                    resume="allow",
                )
            )
        if tensorboard:
            from torchrl.record.loggers import TensorboardLogger

            self.loggers.append(
                TensorboardLogger(exp_name="tensorboard", log_dir=str(self.run_dir))
            )
        if config:
            for logger in self.loggers:
                try:
                    logger.log_hparams(config)
                except Exception:  # some back-ends reject nested values: not worth a crash
                    pass

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Logs each ``name -> value`` at ``step`` (environment steps)."""
        for name, value in values.items():
            value = float(value)
            for logger in self.loggers:
                logger.log_scalar(name, value, step=step)

    def episode(
        self, *, env_steps: int, agent_steps: int, updates: int, ret: float, length: int
    ) -> None:
        """Appends one finished training episode to ``logs/episodes.csv``."""
        path = self.run_dir / "logs" / "episodes.csv"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(",".join(EPISODE_COLUMNS) + "\n")
        with path.open("a") as f:
            f.write(f"{time.time():.3f},{env_steps},{agent_steps},{updates},{ret:.6g},{length}\n")

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        """Logs a ``uint8 (H, W, 3)`` image to wandb / TensorBoard (files are written by the caller)."""
        for logger in self.loggers[1:]:
            experiment = logger.experiment
            if hasattr(experiment, "add_image"):
                experiment.add_image(name, image, global_step=step, dataformats="HWC")
            else:
                import wandb

                experiment.log({name: wandb.Image(image), "env_steps": step})

    def video(self, name: str, path: str | os.PathLike, step: int) -> None:
        """Logs a video file to wandb (TensorBoard gets none: it needs tensors in memory)."""
        for logger in self.loggers[1:]:
            experiment = logger.experiment
            if not hasattr(experiment, "add_image"):
                import wandb

                experiment.log({name: wandb.Video(str(path)), "env_steps": step})

    def close(self) -> None:
        for logger in self.loggers[1:]:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "finish"):
                experiment.finish()
            elif hasattr(experiment, "close"):
                experiment.close()
