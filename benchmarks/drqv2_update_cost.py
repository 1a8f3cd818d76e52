"""Seconds per DrQ-v2 learner update (encoder + critic + actor, Adam, soft target update).

Times :class:`~torchrl_psp.baselines.DrQv2Stepper` steps on synthetic windows of the
replay's layout (single 64x64 frames, ``n_step + frame_stack - 1`` steps), at the paper's
sizes by default::

    taskset -c 1 python benchmarks/drqv2_update_cost.py --threads 1
    python benchmarks/drqv2_update_cost.py --batch-size 64 --hidden-dim 256 --device cuda

Prints one line per setting: median and range over ``--repeats`` timed updates after
``--warmup`` untimed ones, the parameter count and the updates per hour.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tensordict import TensorDict
from torchrl.data import Bounded

from torchrl_psp.baselines import DrQv2Loss, DrQv2WindowLoss, make_drqv2, make_drqv2_stepper


def synthetic_windows(batch: int, window: int, image: int, action_dim: int, device) -> TensorDict:
    """Random windows with the replay's keys: uint8 frames, actions, rewards, flags."""
    frames = torch.randint(0, 256, (batch, window, 3, image, image), dtype=torch.uint8)
    flags = torch.zeros(batch, window, 1, dtype=torch.bool)
    return TensorDict(
        {
            "pixels": frames,
            "action": torch.rand(batch, window, action_dim) * 2 - 1,
            ("next", "pixels"): torch.roll(frames, -1, dims=1),
            ("next", "reward"): torch.rand(batch, window, 1),
            ("next", "done"): flags,
            ("next", "terminated"): flags.clone(),
        },
        [batch, window],
    ).to(device)


def update_cost(args: argparse.Namespace) -> dict[str, float]:
    device = torch.device(args.device)
    spec = Bounded(-1, 1, (args.action_dim,))
    agent = make_drqv2(
        spec,
        (3 * args.frame_stack, args.image_size, args.image_size),
        feature_dim=args.feature_dim,
        hidden_dim=args.hidden_dim,
        device=device,
    )
    agent.exploration.set_step(10**9)
    loss = DrQv2Loss(
        agent.encoder, agent.actor, agent.critic, agent.exploration, action_spec=spec.to(device)
    )
    objective = DrQv2WindowLoss(loss, args.n_step, args.frame_stack)
    stepper = make_drqv2_stepper(objective)
    sample = synthetic_windows(
        args.batch_size, objective.window, args.image_size, args.action_dim, device
    )
    times = []
    for i in range(args.warmup + args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        metrics = stepper.step(None, sample)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    assert not float(metrics["skipped_update"])
    parameters = sum(p.numel() for p in objective.parameters())
    median = statistics.median(times)
    return {
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "parameters": parameters,
        "updates_per_hour": 3600 / median,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256])
    parser.add_argument("--hidden-dim", type=int, default=1024)
    parser.add_argument("--feature-dim", type=int, default=50)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--frame-stack", type=int, default=3)
    parser.add_argument("--n-step", type=int, default=3)
    parser.add_argument("--action-dim", type=int, default=6, help="cheetah: 6")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"DrQ-v2 update, {args.image_size}x{args.image_size}x{3 * args.frame_stack}, hidden "
        f"{args.hidden_dim}, features {args.feature_dim}, {args.device}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    for batch in args.batch_size:
        args_b = argparse.Namespace(**{**vars(args), "batch_size": batch})
        r = update_cost(args_b)
        print(
            f"batch {batch:4d}: {r['median_s']:.3f} s/update (range {r['min_s']:.3f}-"
            f"{r['max_s']:.3f}), {r['parameters'] / 1e6:.2f}M parameters, "
            f"{r['updates_per_hour']:.0f} updates/hour"
        )


if __name__ == "__main__":
    main()
