"""Return of a uniformly random policy: the floor a learning agent must rise above.

python benchmarks/random_policy_return.py --domain cartpole --task swingup --episodes 10
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import torchrl_psp  # noqa: F401  (headless rendering set-up, before dm_control)
from torchrl_psp.envs import DISTRACTORS, make_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", default="cartpole")
    parser.add_argument("--task", default="swingup")
    parser.add_argument("--distractor", default="none", choices=DISTRACTORS)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    env = make_env(args.domain, args.task, distractor=args.distractor, seed=args.seed)
    returns = [
        float(env.rollout(10_000, break_when_any_done=True)["next", "reward"].sum())
        for _ in range(args.episodes)
    ]
    print(
        f"{args.domain}-{args.task} ({args.distractor}), uniform random actions, "
        f"{args.episodes} episodes: return {np.mean(returns):.1f} +- {np.std(returns):.1f} "
        f"(min {np.min(returns):.1f}, max {np.max(returns):.1f})"
    )


if __name__ == "__main__":
    main()
