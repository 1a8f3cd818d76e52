"""Pixel DreamerV3 with Policy-Shaped Prediction, Segmentation Dreamer or plain reconstruction.

Trains one variant on a (distracted) DeepMind Control task::

    python recipes/dreamer_psp.py                                   # PSP, reafferent cheetah-run
    python recipes/dreamer_psp.py preset=smoke                      # one minute on a CPU
    python recipes/dreamer_psp.py variant=sd_gt env.distractor=video env.domain=walker env.task=run
    python recipes/dreamer_psp.py resume=runs/<run directory>       # continue a killed run
    python recipes/dreamer_psp.py variant=drqv2                     # the model-free baseline DrQ-v2

Presets: ``smoke`` (CPU, a minute), ``cpu`` (small model, hours), ``paper`` (the papers'
settings, GPU); without one the recipe picks ``paper`` on a CUDA machine and ``cpu``
otherwise, and says so. Every option is in ``recipes/config/config.yaml``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import torchrl_psp  # noqa: F401  (headless rendering set-up, before dm_control)

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def _run_dir(resume, variant, domain, task, distractor, seed) -> str:
    if resume not in (None, "None", "null", ""):
        return str(resume)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"runs/{variant}_{domain}-{task}_{distractor}_s{seed}_{stamp}"


OmegaConf.register_new_resolver("run_dir", _run_dir, replace=True)


def _command_line_overrides() -> list[str]:
    return [
        o
        for o in HydraConfig.get().overrides.task
        if not o.startswith(("preset=", "hydra.", "resume="))
    ]


def resolve_preset(cfg: DictConfig) -> DictConfig:
    """Replaces ``preset=auto`` by ``paper`` (CUDA available) or ``cpu``; overrides still win."""
    import torch

    if cfg.preset_name != "auto":
        return cfg
    name = "paper" if torch.cuda.is_available() else "cpu"
    preset = OmegaConf.load(CONFIG_DIR / "preset" / f"{name}.yaml")
    return OmegaConf.merge(cfg, preset, OmegaConf.from_dotlist(_command_line_overrides()))


def resumed_config(run_dir: Path) -> DictConfig:
    """The stored configuration of ``run_dir``, with the overrides allowed on resume."""
    from torchrl_psp.training import resume_config

    return resume_config(run_dir, _command_line_overrides())


def _model_free(cfg: DictConfig) -> bool:
    """Whether ``cfg.variant`` is DrQ-v2 (its own agent and trainer; the variant table says)."""
    from torchrl_psp.variants import VARIANT_SPECS

    spec = VARIANT_SPECS.get(cfg.variant)
    return spec is not None and spec.agent == "drqv2"


def describe(cfg: DictConfig, run_dir: Path, resume: bool) -> str:
    from torchrl_psp.training import resolve_device, updates_due

    env = cfg.env
    agent_steps = cfg.train.total_env_steps // env.frame_skip
    updates = updates_due(agent_steps, cfg.replay, cfg.collector.prefill_steps)
    model = cfg.model.size
    if _model_free(cfg):
        model = f"drqv2 (features {cfg.drqv2.feature_dim}, hidden {cfg.drqv2.hidden_dim})"
    return (
        f"{'Resuming' if resume else 'Starting'} {run_dir}\n"
        f"  preset={cfg.preset_name} device={resolve_device(cfg.device)} variant={cfg.variant} "
        f"model={model}\n"
        f"  env={env.domain}-{env.task} distractor={env.distractor} "
        f"segmentation={env.segmentation} compositing={env.compositing}\n"
        f"  {cfg.train.total_env_steps} env steps (action repeat {env.frame_skip}), "
        f"~{updates} updates of {cfg.replay.batch_size}x{cfg.replay.sequence_length}, "
        f"evaluation every {cfg.eval.every_env_steps} env steps"
    )


def _fail(kind: str, message: str) -> None:
    lines = message.splitlines()
    print(f"{kind}: {lines[0]}" if len(lines) == 1 else f"{kind}:", file=sys.stderr)
    for line in lines if len(lines) > 1 else []:
        print(f"  {line}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base="1.3", config_path="config", config_name="config")
def main(cfg: DictConfig) -> dict:
    from torchrl_psp.objectives import NonFiniteUpdateError
    from torchrl_psp.training import (
        CollectionWorkerDied,
        ConfigError,
        DamagedCheckpointError,
        DreamerTrainer,
        RunDirectoryBusyError,
        validate_config,
    )

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    resume = cfg.resume not in (None, "")
    try:
        cfg = resumed_config(Path(cfg.resume)) if resume else resolve_preset(cfg)
        if _model_free(cfg):
            from torchrl_psp.baselines import DrQv2Trainer, drqv2_run_config
            from torchrl_psp.baselines.drqv2_trainer import validate_drqv2_config

            cfg = drqv2_run_config(cfg)  # DrQ-v2's replay, prefill and update rate
            validate_drqv2_config(cfg)  # every setting, before anything is built
            print(describe(cfg, run_dir, resume), flush=True)
            trainer = DrQv2Trainer(cfg, run_dir, resume=resume)
        else:
            validate_config(cfg)  # every setting, before anything is built
            print(describe(cfg, run_dir, resume), flush=True)
            trainer = DreamerTrainer(cfg, run_dir, resume=resume)
    except ConfigError as error:
        _fail("Configuration error", str(error))
    except (RunDirectoryBusyError, DamagedCheckpointError) as error:
        _fail("Cannot start", str(error))
    try:
        result = trainer.train()
    except NonFiniteUpdateError as error:
        print(f"Stopped: {error} Last checkpoint: {run_dir / 'checkpoint.pt'}", file=sys.stderr)
        sys.exit(1)
    except CollectionWorkerDied as error:
        print(f"Stopped: {error}", file=sys.stderr)
        sys.exit(1)
    print(
        f"Done: {result['env_steps']} env steps, {result['updates']} updates, final evaluation "
        f"return {result['final_eval_return']:.1f} +- {result['final_eval_std']:.1f}. Run: {run_dir}"
    )
    return result


def _check_resume_argument(argv: list[str]) -> None:
    """Before hydra creates its output folder: ``resume=`` must name a run, and a free one.

    Hydra writes ``.hydra/`` and a log file into the run directory before ``main`` runs;
    a path that is no run must not be created, and a run that another process owns must
    not get those files rewritten.
    """
    values = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not values or values[-1] in ("", "null", "None"):
        return
    from torchrl_psp.training.lock import RunDirectoryBusyError, lock_run_directory

    run_dir = Path(values[-1])
    if not (run_dir / "config.yaml").is_file():
        _fail(
            "Configuration error",
            f"resume={run_dir}: no run there (missing {run_dir / 'config.yaml'}); nothing was "
            "written.",
        )
    try:
        lock_run_directory(run_dir)  # held until this process exits
    except RunDirectoryBusyError as error:
        _fail("Cannot start", str(error))


if __name__ == "__main__":
    _check_resume_argument(sys.argv[1:])
    main()
