"""What a trained run's world model and actor have learned, from its checkpoint.

Plays one evaluation episode with the sampled policy of the run, then prints:

* reward prediction: correlation and RMSE of the predicted reward against the true one,
  on the world model's posterior states and ``k`` steps open loop (prior only, with the
  actions taken);
* action use: the ``k``-step open-loop image error with the actions taken, negated and
  zero (if the model uses the actions, the first is the smallest);
* the actor (sampled and mode) against uniform random and zero actions: their imagined
  reward over 15 steps and over 100 discounted steps from the same posterior states, and
  their real return (if the actor loses inside the model, its optimisation fails; if the
  model ranks the policies otherwise than reality does, the model misleads the actor);
* the policy: mean ``|loc|``, fraction of saturated means, mean scale.

Usage::

    python benchmarks/world_model_diagnostics.py runs/<run directory> [--steps 300]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_psp.training import open_run
from torchrl_psp.training.evaluation import evaluate_policy


def _open_loop(agent, state, belief, actions, starts, k):
    """Prior-only rollout of ``k`` steps from ``starts`` with ``actions[starts + j]``."""
    s, b = state[starts], belief[starts]
    for j in range(1, k + 1):
        _, s, b = agent.prior(s, b, actions[starts + j])
    return s, b


def _simple_policy(name: str, agent):
    """A latent-state policy: the actor (sampled or mode), uniform random or zero actions."""

    def policy(td):
        n = td.shape[0]
        if name == "zero":
            return td.set("action", torch.zeros(n, agent.action_dim))
        if name == "uniform random":
            return td.set("action", torch.rand(n, agent.action_dim) * 2 - 1)
        mode = ExplorationType.RANDOM if "sampled" in name else ExplorationType.DETERMINISTIC
        with set_exploration_type(mode):
            return agent.actor(td)

    return policy


def _real_returns(parts, name: str, episodes: int, steps: int) -> list[float]:
    """Returns of ``episodes`` evaluation episodes of a policy named as in :func:`_simple_policy`."""
    env = parts.eval_env
    policy, mode = parts.policy, ExplorationType.DETERMINISTIC
    if name == "zero":

        def policy(td):
            return td.set("action", env.action_spec.zero())

    elif name == "uniform random":
        policy = None
    elif "sampled" in name:
        mode = ExplorationType.RANDOM
    return evaluate_policy(env, policy, episodes, steps, exploration_type=mode).returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=300, help="length of the episode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon", type=int, default=15, help="short imagination horizon")
    parser.add_argument("--long-horizon", type=int, default=100, help="long imagination horizon")
    parser.add_argument("--episodes", type=int, default=3, help="real episodes per policy")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    run = open_run(args.run_dir, replay=False)
    parts = run.parts  # read only: nothing is written into the run directory
    agent = parts.agent
    print(f"{args.run_dir}: {run.counters}")

    with set_exploration_type(ExplorationType.RANDOM), torch.no_grad():
        episode = parts.eval_env.rollout(args.steps, parts.policy, break_when_any_done=True)
        sequence = episode.unsqueeze(0).select("state", "belief", "action", ("next", "pixels"))
        sequence["is_init"] = torch.zeros(1, episode.shape[0], 1, dtype=torch.bool)
        sequence["is_init"][:, 0] = True
        posterior = agent.world_model(sequence)[0]
    reward = episode["next", "reward"].flatten().numpy()
    state, belief = posterior["next", "state"], posterior["next", "belief"]
    actions = episode["action"]
    pixels = episode["next", "pixels"].float() / 255
    reward_model = agent.imagination_env.world_model.get_reward_operator()
    transition = agent.imagination_env.world_model.get_transition_model_operator()

    print(
        f"episode return {reward.sum():.1f} over {len(reward)} steps; reward std {reward.std():.3f}"
    )
    predicted = posterior["next", "reward"].flatten().numpy()
    print(
        f"reward, posterior:      corr {np.corrcoef(predicted, reward)[0, 1]:.3f}  "
        f"rmse {np.sqrt(((predicted - reward) ** 2).mean()):.3f}"
    )
    for k in (1, 5, 10, 15):
        starts = torch.arange(10, len(reward) - k - 1, 5)
        with torch.no_grad():
            s, b = _open_loop(agent, state, belief, actions, starts, k)
            imagined = reward_model(TensorDict({"state": s, "belief": b}, [len(starts)]))
        imagined = imagined["reward"].flatten().numpy()
        actual = reward[starts + k]
        print(
            f"reward, {k:2d} steps open loop: corr {np.corrcoef(imagined, actual)[0, 1]:.3f}  "
            f"rmse {np.sqrt(((imagined - actual) ** 2).mean()):.3f}"
        )

    k = 5
    starts = torch.arange(10, len(reward) - k - 1, 3)
    if agent.decoder is None:  # dreamerpro: a world model without an image decoder
        print("image error: not measured (this agent's world model has no image decoder)")
    else:
        for name, change in (("taken", 1.0), ("negated", -1.0), ("zero", 0.0)):
            with torch.no_grad():
                s, b = _open_loop(agent, state, belief, actions * change, starts, k)
                image = agent.decoder(s, b)
            error = ((image - pixels[starts + k]) ** 2).sum((-3, -2, -1)).mean()
            print(f"image error, {k} steps open loop, actions {name:8s}: {float(error):.2f}")

    # The actor against simple policies, inside the model (from the same posterior states)
    # and in the real environment: if the model ranks them as reality does and the actor
    # loses inside the model, its optimisation fails; if the model ranks them wrongly, the
    # model (or the data it was fit on) misleads the actor.
    gamma = 1 - 1 / parts.cfg.optim.horizon
    starts = torch.arange(0, len(reward), 2)
    print(
        f"policy            imagined reward: {args.horizon} steps, {args.long_horizon} steps "
        f"discounted | real return ({args.episodes} episodes)"
    )
    for name in ("actor (sampled)", "actor (mode)", "uniform random", "zero"):
        policy = _simple_policy(name, agent)
        short, long = torch.zeros(len(starts)), torch.zeros(len(starts))
        with torch.no_grad():
            s, b = state[starts], belief[starts]
            for t in range(max(args.horizon, args.long_horizon)):
                td = policy(TensorDict({"state": s, "belief": b}, [len(starts)]))
                step = reward_model(transition(td))  # the imagination's (clamping) step
                s, b = step["state"], step["belief"]
                r = step["reward"].flatten()
                short += r if t < args.horizon else 0
                long += gamma**t * r if t < args.long_horizon else 0
        real = _real_returns(parts, name, args.episodes, args.steps)
        print(
            f"{name:16s}  {float(short.mean()):8.2f}  {float(long.mean()):8.2f}  | "
            f"{np.mean(real):.1f} +- {np.std(real):.1f}"
        )

    loc, scale = episode["loc"], episode["scale"]
    print(
        f"policy: mean |loc| {loc.abs().mean():.3f}, saturated (|loc| > 0.99) "
        f"{(loc.abs() > 0.99).float().mean():.2f}, mean scale {scale.mean():.3f}"
    )


if __name__ == "__main__":
    main()
