"""Seconds per world-model update of DreamerV3, PSP and SD, on one batch and one model size.

Each row is one update (loss forward, backward, DreamerV3 optimiser step) of the
world-model loss of a variant, timed on the same synthetic batch from the same
weights (parameters are restored before every timed update). Rows are interleaved
round by round; the median over rounds of the wall-clock time and of the process CPU
time are reported with their ratios to plain DreamerV3 (on a machine shared with
other jobs, CPU time with ``--threads 1`` is the stable measure). The last rows time
the complete learner update (world model, actor, critic, through
:func:`~torchrl_psp.objectives.make_optimization_stepper`) of the ``--learner-variants``
(default DreamerV3 and PSP) in each ``--modes``: ``eager`` (interleaved with the
world-model rows), ``regions`` (:func:`~torchrl_psp.modules.compile_agent`: the compiled
hot spots, the recipe's ``optim.compile=auto`` off the CUDA step), ``compile``
(``torch.compile`` of the whole forward/backward) and
``compile+cudagraph`` (compiled and captured in a CUDA graph, TorchRL's default on
CUDA). A compiled row is warmed up (compiled, captured) first, its warm-up time is
printed, and the row is printed as soon as it is timed, so that a killed run keeps the
rows it finished. Ratios of learner rows are to DreamerV3's learner row of the same mode.

Usage::

    python benchmarks/update_cost.py                       # CPU, preset small, 16x16
    python benchmarks/update_cost.py --device cuda --preset paper --batch 16 --seq 64
    python benchmarks/update_cost.py --device cuda --preset paper --batch 16 --seq 64 \
        --no-world-model --learner-variants dreamer psp sd_gt --modes compile+cudagraph
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import torch
from torchrl.data import Bounded
from torchrl.trainers.algorithms import DreamerV3Optimizer

from torchrl_psp.modules import (
    DREAMER_V3_PRESETS,
    compile_agent,
    make_dreamer_v3,
    synthetic_replay_sample,
)
from torchrl_psp.objectives import (
    VARIANTS,
    make_model_loss,
    make_optimization_stepper,
    make_variant_loss,
)

#: row name -> (variant, extra arguments of the model loss)
WORLD_MODEL_ROWS: dict[str, tuple[str, dict]] = {
    "plain DreamerV3ModelLoss": ("dreamer", {}),
    "+ saliency weighting (pixel-wise)": ("psp_noseg", {"adversarial_head": None}),
    "+ saliency, separate encoder pass": (
        "psp_noseg",
        {"adversarial_head": None, "share_encoder_pass": False},
    ),
    "+ segmentation aggregation": ("psp_noadv", {}),
    "+ adversarial head (alone)": ("psp_nosal", {}),
    "full PSP": ("psp", {}),
    "SD (x * mask)": ("sd_gt", {}),
    "SD + selective L2 (mask head)": ("sd_approx", {}),
}
#: shown name of a learner variant in the row names
LEARNER_NAMES: dict[str, str] = {"dreamer": "DreamerV3", "psp": "PSP", "sd_gt": "SD (GT mask)"}
#: execution mode -> (compile_train_step, cudagraph) of the learner stepper
MODES: dict[str, tuple[bool, bool]] = {
    "eager": (False, False),
    "regions": (False, False),  # torchrl_psp.modules.compile_agent, the rest eager
    "compile": (True, False),
    "compile+cudagraph": (True, True),
}
NAME_WIDTH = 48


def learner_row_name(variant: str, mode: str = "eager") -> str:
    """The table name of the learner row of ``variant`` in ``mode``.

    Examples:
        >>> learner_row_name("psp")
        'learner update, PSP'
        >>> learner_row_name("dreamer", "compile+cudagraph")
        'learner update, DreamerV3 [compile+cudagraph]'
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(VARIANTS)}.")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}.")
    name = f"learner update, {LEARNER_NAMES.get(variant, variant)}"
    return name if mode == "eager" else f"{name} [{mode}]"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _world_model_update(loss: torch.nn.Module, sample) -> Callable[[], None]:
    optimizer = DreamerV3Optimizer(loss.parameters(), warmup_steps=0)

    def update() -> None:
        losses, _ = loss(sample)
        total = sum(value.sum() for key, value in losses.items() if key.startswith("loss_"))
        optimizer.zero_grad(set_to_none=False)
        total.backward()
        optimizer.step()

    return update


def _learner_update(
    loss: torch.nn.Module,
    sample,
    mode: str = "eager",
    mixed_precision: bool = False,
) -> tuple[Callable[[], None], float]:
    """The update of the learner stepper in ``mode`` and its warm-up time in seconds."""
    compile_train_step, cudagraph = MODES[mode]
    stepper = make_optimization_stepper(
        loss,
        warmup_steps=0,
        compile_train_step=compile_train_step,
        cudagraph=cudagraph,
        mixed_precision=mixed_precision,
    )
    warmup_s = 0.0
    if mode == "regions":  # the first update compiles the regions
        start = time.perf_counter()
        stepper.step(None, sample.clone(False))
        warmup_s = time.perf_counter() - start
    elif mode != "eager":
        start = time.perf_counter()
        stepper.warmup(sample)
        warmup_s = time.perf_counter() - start

    def update() -> None:
        stepper.step(None, sample.clone(False))

    return update, warmup_s


def _time(
    updates: dict[str, Callable[[], None]],
    restore: dict[str, Callable[[], None]],
    rounds: int,
    device: torch.device,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each update, interleaved round by round after a warm-up round."""
    timings: dict[str, list[float]] = {name: [] for name in updates}
    cpu_times: dict[str, list[float]] = {name: [] for name in updates}
    for round_index in range(rounds + 1):  # round 0 is a warm-up
        for name, update in updates.items():
            restore[name]()
            _synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            update()
            _synchronize(device)
            if round_index:
                timings[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - start_cpu)
    return timings, cpu_times


def _restorer(loss: torch.nn.Module) -> Callable[[], None]:
    """Puts back the weights ``loss`` has now (shared modules and the loss's own heads)."""
    initial = copy.deepcopy(loss.state_dict())
    return lambda: loss.load_state_dict(initial)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--preset", default="small", choices=sorted(DREAMER_V3_PRESETS))
    parser.add_argument("--batch", type=int, default=16, help="sequences per batch")
    parser.add_argument("--seq", type=int, default=16, help="steps per sequence")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5, help="timed updates per row")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-learner", action="store_true", help="skip the learner rows")
    parser.add_argument("--no-world-model", action="store_true", help="skip the world-model rows")
    parser.add_argument(
        "--learner-variants",
        nargs="+",
        default=["dreamer", "psp"],
        choices=sorted(VARIANTS),
        help="variants of the learner rows (default: dreamer psp)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["eager"],
        choices=list(MODES),
        help="execution of the learner rows: eager, regions, compile, compile+cudagraph (CUDA only)",
    )
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="learner rows under bfloat16 autocast (the stepper's mixed_precision, CUDA)",
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _row_text(name: str, wall: list[float], cpu: list[float], reference, extra: str = "") -> str:
    cells = []
    for values, ref in zip((wall, cpu), reference or (None, None)):
        median = statistics.median(values)
        ratio = f"{median / ref:6.2f}" if ref else f"{'-':>6s}"
        cells.append(f"{median:8.3f} {ratio}")
    return f"{name:{NAME_WIDTH}s} " + " ".join(cells) + extra


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark; prints the table and returns ``{"info": ..., "rows": [...]}``."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("batch", "seq", "rounds", "image_size", "action_dim"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer.")
    if args.no_learner and args.no_world_model:
        parser.error("--no-learner and --no-world-model leave nothing to time.")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    size = args.image_size

    def build():
        """The agent and its synthetic batch (the same weights and data at every call)."""
        torch.manual_seed(args.seed)
        agent = make_dreamer_v3(
            Bounded(-1, 1, (args.action_dim,)),
            (3, size, size),
            preset=args.preset,
            device=args.device,
        )
        sample = synthetic_replay_sample(
            agent, args.batch, args.seq, generator=torch.Generator().manual_seed(args.seed)
        )
        return agent, sample

    agent, sample = build()
    device = next(agent.world_model.parameters()).device
    if device.type != "cuda" and "compile+cudagraph" in args.modes:
        parser.error("--modes compile+cudagraph needs a CUDA device.")
    parameters = sum(p.numel() for p in agent.world_model.parameters())
    info = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "preset": args.preset,
        "world_model_params": parameters,
        "batch": args.batch,
        "seq": args.seq,
        "image": size,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "mixed_precision": args.mixed_precision,
    }
    print(
        f"device={device} ({torch.get_num_threads()} threads) preset={args.preset} "
        f"world-model params={parameters / 1e6:.2f}M batch={args.batch}x{args.seq} "
        f"image={size}x{size} rounds={args.rounds} torch={torch.__version__}"
        + (f" gpu={info['gpu']}" if info["gpu"] else "")
        + (" mixed_precision=bf16" if args.mixed_precision else ""),
        flush=True,
    )
    print(f"{'update':{NAME_WIDTH}s} {'wall s':>8s} {'ratio':>6s} {'CPU s':>8s} {'ratio':>6s}")
    rows: list[dict] = []

    def record(name, variant, mode, wall, cpu, reference, warmup_s=None):
        extra = f"  (warm-up {warmup_s:.1f} s)" if warmup_s else ""
        print(_row_text(name, wall, cpu, reference, extra), flush=True)
        rows.append(
            {
                "name": name,
                "variant": variant,
                "mode": mode,
                "wall_s": statistics.median(wall),
                "cpu_s": statistics.median(cpu),
                "warmup_s": warmup_s,
            }
        )
        if args.json:
            with open(args.json, "w") as f:  # rewritten after every row: a kill keeps them
                json.dump({"info": info, "rows": rows}, f, indent=1)

    # Eager block: world-model rows and eager learner rows, interleaved round by round.
    updates: dict[str, Callable[[], None]] = {}
    restore: dict[str, Callable[[], None]] = {}
    variants: dict[str, tuple[str, str]] = {}
    if not args.no_world_model:
        for name, (variant, kwargs) in WORLD_MODEL_ROWS.items():
            loss = make_model_loss(agent, variant, **kwargs)
            restore[name] = _restorer(loss)
            updates[name] = _world_model_update(loss, sample)
            variants[name] = (variant, "world model")
    learner_modes = [] if args.no_learner else list(dict.fromkeys(args.modes))
    if "eager" in learner_modes:
        for variant in args.learner_variants:
            name = learner_row_name(variant)
            loss = make_variant_loss(agent, variant)
            restore[name] = _restorer(loss)
            updates[name], _ = _learner_update(loss, sample, mixed_precision=args.mixed_precision)
            variants[name] = (variant, "eager")
    if updates:
        timings, cpu_times = _time(updates, restore, args.rounds, device)
        for name in timings:
            variant, mode = variants[name]
            learner = mode != "world model"
            ref_name = learner_row_name("dreamer") if learner else "plain DreamerV3ModelLoss"
            reference = None
            if ref_name in timings:
                reference = (
                    statistics.median(timings[ref_name]),
                    statistics.median(cpu_times[ref_name]),
                )
            record(name, variant, mode, timings[name], cpu_times[name], reference)

    # Compiled blocks: one row at a time (warm-up = compile and capture), printed when done.
    for mode in learner_modes:
        if mode == "eager":
            continue
        reference = None
        for variant in args.learner_variants:
            name = learner_row_name(variant, mode)
            try:
                # A fresh agent per compiled row: no module is shared by two compiled steps.
                agent, sample = build()
                loss = make_variant_loss(agent, variant)
                if mode == "regions":
                    compile_agent(agent)
                restore_row = _restorer(loss)
                update, warmup_s = _learner_update(
                    loss, sample, mode, mixed_precision=args.mixed_precision
                )
                timings, cpu_times = _time({name: update}, {name: restore_row}, args.rounds, device)
            except Exception as error:  # one row failing (compile, capture) spares the next
                first_line = (str(error).splitlines() or [""])[0]
                message = f"{type(error).__name__}: {first_line[:300]}"
                print(f"{name:{NAME_WIDTH}s} FAILED {message}", flush=True)
                rows.append({"name": name, "variant": variant, "mode": mode, "error": message})
                continue
            if variant == "dreamer":
                reference = (
                    statistics.median(timings[name]),
                    statistics.median(cpu_times[name]),
                )
            record(name, variant, mode, timings[name], cpu_times[name], reference, warmup_s)
    return {"info": info, "rows": rows}


if __name__ == "__main__":
    main()
