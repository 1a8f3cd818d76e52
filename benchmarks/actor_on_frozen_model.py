"""Train a run's actor and critic on its frozen world model: does imagined progress become real?

Loads a run's checkpoint, freezes the world model, and optimises only the actor and the
critic with the run's own losses (imagination from the posterior states of replayed
sequences). Every ``--eval-every`` updates it prints the imagined lambda-return (the
actor's objective) and the real return of the policy's mode. If the first rises and the
second does not, the world model (or the data it was fit on) misleads the actor; if
neither rises, the actor-critic optimisation itself is stuck.

Usage::

    python benchmarks/actor_on_frozen_model.py runs/<run directory> [--updates 1500]

The run directory is not modified (nothing is saved).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tensordict import TensorDict

from torchrl_psp.training import open_run
from torchrl_psp.training.evaluation import evaluate_policy


def _posterior_pool(loss, replay, batches: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior states and beliefs of ``batches`` replayed batches, flattened."""
    states, beliefs = [], []
    with torch.no_grad():
        for _ in range(batches):
            _, posterior = loss.model_loss(replay.sample())
            state, belief = posterior["next", "state"], posterior["next", "belief"]
            states.append(state.reshape(-1, state.shape[-1]))
            beliefs.append(belief.reshape(-1, belief.shape[-1]))
    return torch.cat(states), torch.cat(beliefs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--updates", type=int, default=1500)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--batch", type=int, default=512, help="imagined starts per update")
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam step of actor and critic")
    parser.add_argument("--pool", type=int, default=16, help="replayed batches of start states")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1000, help="length limit of an episode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    run = open_run(args.run_dir, replay=True)
    parts = run.parts  # read only: nothing is written into the run directory
    actor_loss, value_loss = parts.loss.actor_loss, parts.loss.value_loss
    states, beliefs = _posterior_pool(parts.loss, run.replay, args.pool)
    parameters = [*parts.agent.actor.parameters(), *value_loss.value_model.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=args.lr, eps=1e-5)
    print(f"{args.run_dir}: {run.counters}; {len(states)} start states")
    print("updates  imagined lambda-return  actor entropy  real return (mode)  seconds")
    start, targets, entropies = time.time(), [], []
    for update in range(args.updates + 1):
        if update % args.eval_every == 0:
            real = evaluate_policy(parts.eval_env, parts.policy, args.episodes, args.steps).returns
            target = np.mean(targets) if targets else float("nan")
            entropy = np.mean(entropies) if entropies else float("nan")
            print(
                f"{update:7d}  {target:22.2f}  {entropy:13.3f}  "
                f"{np.mean(real):8.1f} +- {np.std(real):5.1f}  {time.time() - start:7.0f}",
                flush=True,
            )
            targets, entropies = [], []
        if update == args.updates:
            break
        index = torch.randint(0, len(states), (args.batch,))
        actor_out, imagined = actor_loss(
            TensorDict({"state": states[index], "belief": beliefs[index]}, [args.batch])
        )
        value_out, _ = value_loss(imagined.detach())
        optimizer.zero_grad()
        (actor_out["loss_actor"] + value_out["loss_value"]).backward()
        optimizer.step()
        parts.stepper.target_updater.step()
        targets.append(float(imagined["lambda_target"].mean()))
        entropies.append(float(actor_out["actor_entropy"]))


if __name__ == "__main__":
    main()
