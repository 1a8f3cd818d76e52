"""Return of a uniformly random policy (and of zero actions): the floors a learner must rise above.

python benchmarks/random_policy_return.py --domain cartpole --task swingup --episodes 10
python benchmarks/random_policy_return.py --domain cartpole --task swingup --frame-skip 8

The zero-action policy matters on tasks where doing nothing is already good (cartpole-balance:
the pole starts upright): there, an actor whose mean is still near zero looks "learned".
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
    parser.add_argument("--frame-skip", type=int, default=2, help="action repeat")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    env = make_env(
        args.domain,
        args.task,
        distractor=args.distractor,
        seed=args.seed,
        frame_skip=args.frame_skip,
    )

    def zero_actions(tensordict):
        return tensordict.set("action", env.action_spec.zero())

    for name, policy in (("uniform random actions", None), ("zero actions", zero_actions)):
        returns = [
            float(env.rollout(10_000, policy, break_when_any_done=True)["next", "reward"].sum())
            for _ in range(args.episodes)
        ]
        print(
            f"{args.domain}-{args.task} ({args.distractor}, frame_skip {args.frame_skip}), "
            f"{name}, {args.episodes} episodes: return {np.mean(returns):.1f} "
            f"+- {np.std(returns):.1f} (min {np.min(returns):.1f}, max {np.max(returns):.1f})"
        )


if __name__ == "__main__":
    main()
