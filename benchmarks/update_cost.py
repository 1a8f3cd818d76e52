"""Seconds per world-model update of DreamerV3, PSP and SD, on one batch and one model size.

Each row is one update (loss forward, backward, DreamerV3 optimiser step) of the
world-model loss of a variant, timed on the same synthetic batch from the same
weights (parameters are restored before every timed update). Rows are interleaved
round by round; the median over rounds of the wall-clock time and of the process CPU
time are reported with their ratios to plain DreamerV3 (on a machine shared with
other jobs, CPU time with ``--threads 1`` is the stable measure). The last rows time
the complete learner update (world model, actor, critic) of DreamerV3 and PSP.

Usage::

    python benchmarks/update_cost.py                       # CPU, preset small, 16x16
    python benchmarks/update_cost.py --device cuda --preset paper --batch 16 --seq 64
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torchrl.data import Bounded
from torchrl.trainers.algorithms import DreamerV3Optimizer

from torchrl_psp.modules import DREAMER_V3_PRESETS, make_dreamer_v3, synthetic_replay_sample
from torchrl_psp.objectives import make_model_loss, make_optimization_stepper, make_variant_loss

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
LEARNER_ROWS: dict[str, str] = {
    "learner update, DreamerV3": "dreamer",
    "learner update, PSP": "psp",
}


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


def _learner_update(loss: torch.nn.Module, sample) -> Callable[[], None]:
    stepper = make_optimization_stepper(loss, warmup_steps=0)

    def update() -> None:
        stepper.step(None, sample.clone(False))

    return update


def main(argv: list[str] | None = None) -> None:
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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    size = args.image_size
    agent = make_dreamer_v3(
        Bounded(-1, 1, (args.action_dim,)),
        (3, size, size),
        preset=args.preset,
        device=args.device,
    )
    device = next(agent.world_model.parameters()).device
    sample = synthetic_replay_sample(
        agent, args.batch, args.seq, generator=torch.Generator().manual_seed(args.seed)
    )
    losses: dict[str, torch.nn.Module] = {}
    updates: dict[str, Callable[[], None]] = {}
    for name, (variant, kwargs) in WORLD_MODEL_ROWS.items():
        losses[name] = make_model_loss(agent, variant, **kwargs)
        updates[name] = _world_model_update(losses[name], sample)
    if not args.no_learner:
        for name, variant in LEARNER_ROWS.items():
            losses[name] = make_variant_loss(agent, variant)
            updates[name] = _learner_update(losses[name], sample)
    # Every row starts from the same weights (shared modules and the loss's own heads).
    initial = {name: copy.deepcopy(loss.state_dict()) for name, loss in losses.items()}

    timings: dict[str, list[float]] = {name: [] for name in updates}
    cpu_times: dict[str, list[float]] = {name: [] for name in updates}
    for round_index in range(args.rounds + 1):  # round 0 is a warm-up
        for name, update in updates.items():
            losses[name].load_state_dict(initial[name])
            _synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            update()
            _synchronize(device)
            if round_index:
                timings[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - start_cpu)

    parameters = sum(p.numel() for p in agent.world_model.parameters())
    header = (
        f"device={device} ({torch.get_num_threads()} threads) preset={args.preset} "
        f"world-model params={parameters / 1e6:.2f}M batch={args.batch}x{args.seq} "
        f"image={size}x{size} rounds={args.rounds} torch={torch.__version__}"
    )
    print(header)
    columns = {"wall": timings, "cpu": cpu_times}
    references = {
        (kind, learner): statistics.median(
            values["learner update, DreamerV3" if learner else "plain DreamerV3ModelLoss"]
        )
        for kind, values in columns.items()
        for learner in (False, True)
        if not learner or "learner update, DreamerV3" in values
    }
    print(f"{'update':38s} {'wall s':>8s} {'ratio':>6s} {'CPU s':>8s} {'ratio':>6s}")
    for name in timings:
        learner = name.startswith("learner")
        cells = []
        for kind, values in columns.items():
            median = statistics.median(values[name])
            cells.append(f"{median:8.3f} {median / references[kind, learner]:6.2f}")
        print(f"{name:38s} " + " ".join(cells))


if __name__ == "__main__":
    main()
