"""What a trained run's world model and actor have learned, from its checkpoint.

Plays one evaluation episode with the sampled policy of the run, then prints:

* reward prediction: correlation and RMSE of the predicted reward against the true one,
  on the world model's posterior states and ``k`` steps open loop (prior only, with the
  actions taken);
* action use: the ``k``-step open-loop image error with the actions taken, negated and
  zero (if the model uses the actions, the first is the smallest);
* the imagined 15-step reward of the actor against uniform random and zero actions
  (if the actor does not beat them inside the model, its optimisation fails, not the
  model);
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

from torchrl_psp.training import DreamerTrainer, load_run_config


def _open_loop(agent, state, belief, actions, starts, k):
    """Prior-only rollout of ``k`` steps from ``starts`` with ``actions[starts + j]``."""
    s, b = state[starts], belief[starts]
    for j in range(1, k + 1):
        _, s, b = agent.prior(s, b, actions[starts + j])
    return s, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=300, help="length of the episode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    cfg = load_run_config(args.run_dir)
    cfg.logger.wandb = "disabled"
    trainer = DreamerTrainer(cfg, args.run_dir, resume=True)
    agent = trainer.agent
    print(f"{args.run_dir}: {trainer.counters}")

    with set_exploration_type(ExplorationType.RANDOM), torch.no_grad():
        episode = trainer.eval_env.rollout(args.steps, trainer.policy, break_when_any_done=True)
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
    for name, change in (("taken", 1.0), ("negated", -1.0), ("zero", 0.0)):
        with torch.no_grad():
            s, b = _open_loop(agent, state, belief, actions * change, starts, k)
            image = agent.decoder(s, b)
        error = ((image - pixels[starts + k]) ** 2).sum((-3, -2, -1)).mean()
        print(f"image error, {k} steps open loop, actions {name:8s}: {float(error):.2f}")

    # Imagined return of the actor against simple policies, from the same posterior states:
    # if the actor does not beat them in the model, its optimisation (not the model) fails.
    horizon = 15
    starts = torch.arange(0, len(reward), 2)
    for name in ("actor (sampled)", "actor (mode)", "uniform random", "zero"):
        total = torch.zeros(len(starts))
        with torch.no_grad():
            s, b = state[starts], belief[starts]
            for _ in range(horizon):
                td = TensorDict({"state": s, "belief": b}, [len(starts)])
                if name.startswith("actor"):
                    mode = (
                        ExplorationType.RANDOM
                        if "sampled" in name
                        else ExplorationType.DETERMINISTIC
                    )
                    with set_exploration_type(mode):
                        action = agent.actor(td)["action"]
                elif name == "zero":
                    action = torch.zeros(len(starts), agent.action_dim)
                else:
                    action = torch.rand(len(starts), agent.action_dim) * 2 - 1
                td["action"] = action
                step = reward_model(transition(td))  # the imagination's (clamping) step
                s, b = step["state"], step["belief"]
                total += step["reward"].flatten()
        print(f"imagined {horizon}-step reward sum, {name:16s}: {float(total.mean()):.2f}")

    loc, scale = episode["loc"], episode["scale"]
    print(
        f"policy: mean |loc| {loc.abs().mean():.3f}, saturated (|loc| > 0.99) "
        f"{(loc.abs() > 0.99).float().mean():.2f}, mean scale {scale.mean():.3f}"
    )


if __name__ == "__main__":
    main()
