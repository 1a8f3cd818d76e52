"""Seconds per update of DreamerPro against DreamerV3, on one batch and one model size.

Two rows per variant (``dreamer`` and ``dreamerpro``, each on its own agent built from the
same seed): the world-model update (model loss forward, backward, DreamerV3 optimiser
step) and the complete learner update (world model, actor, critic, through
:func:`~torchrl_psp.objectives.make_optimization_stepper`). Rows are interleaved round by
round after ``--warmup`` untimed rounds; the median wall-clock and process CPU times over
``--rounds`` are printed with their ratios to DreamerV3 (on a shared machine, CPU time
with ``--threads 1`` is the stable measure). DreamerPro's world-model pass runs on two
augmented views (``2B`` sequences) and a momentum encoder pass, without a decoder.

Usage::

    taskset -c 1 python benchmarks/dreamerpro_update_cost.py --threads 1     # small, 16x16
    python benchmarks/dreamerpro_update_cost.py --device cuda --preset paper --batch 16 --seq 64
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torchrl.data import Bounded
from torchrl.trainers.algorithms import DreamerV3Optimizer

from torchrl_psp.modules import make_dreamer_v3, synthetic_replay_sample
from torchrl_psp.objectives import make_model_loss, make_optimization_stepper, make_variant_loss

VARIANTS = ("dreamer", "dreamerpro")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _world_model_update(agent, variant: str, sample) -> Callable[[], None]:
    loss = make_model_loss(agent, variant)
    optimizer = DreamerV3Optimizer(loss.parameters(), lr=1e-4, warmup_steps=0)

    def update() -> None:
        optimizer.zero_grad(set_to_none=True)
        losses, _ = loss(sample)
        sum(v.sum() for k, v in losses.items() if k.startswith("loss_")).backward()
        optimizer.step()

    return update


def _learner_update(agent, variant: str, sample) -> Callable[[], None]:
    stepper = make_optimization_stepper(make_variant_loss(agent, variant), warmup_steps=0)
    return lambda: stepper.step(None, sample.clone())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows: dict[str, Callable[[], None]] = {}
    for variant in VARIANTS:
        for kind, build in (("world model", _world_model_update), ("learner", _learner_update)):
            torch.manual_seed(0)
            agent = make_dreamer_v3(
                Bounded(-1, 1, (6,)),
                (3, args.image_size, args.image_size),
                preset=args.preset,
                device=device,
            )
            sample = synthetic_replay_sample(
                agent, args.batch, args.seq, generator=torch.Generator().manual_seed(0)
            )
            rows[f"{kind}: {variant}"] = build(agent, variant, sample)
    wall: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    for round_index in range(args.warmup + args.rounds):
        for name, update in rows.items():
            _sync(device)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            update()
            _sync(device)
            if round_index >= args.warmup:
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)
    print(
        f"preset={args.preset} image={args.image_size} batch={args.batch}x{args.seq} "
        f"device={device} threads={torch.get_num_threads()} rounds={args.rounds}"
    )
    print(f"{'row':<26} {'wall s':>8} {'cpu s':>8} {'wall / dreamer':>15} {'cpu / dreamer':>14}")
    for name in rows:
        reference = name.rsplit(":", 1)[0] + ": dreamer"
        median_wall, median_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
        ratio_wall = median_wall / statistics.median(wall[reference])
        ratio_cpu = median_cpu / statistics.median(cpu[reference])
        print(
            f"{name:<26} {median_wall:8.3f} {median_cpu:8.3f} {ratio_wall:15.2f} {ratio_cpu:14.2f}"
        )


if __name__ == "__main__":
    main()
