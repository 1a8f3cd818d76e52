"""Frames per second of distracted DMC pipelines against TorchRL's plain pixel env.

Every variant runs in this one process, interleaved over several rounds (the median
round is reported), on the same task with random actions and action repeat 2::

    python benchmarks/env_throughput.py [--domain cheetah --task run --steps 300 --rounds 3]

Rows:

* plain: ``DMControlWrapper(suite.load(...), from_pixels=True, frame_skip=2)`` at 64x64,
  MuJoCo's default rendering (it renders after each repeated physics step);
* plain + fast render: the same with the fast rendering settings;
* make_env, no distractor: ``MujocoPixels`` renders once per step, fast settings;
* make_env reafferent + GT segmentation, and video + GT segmentation: the full pipelines.

It also times the ground-truth segmentation alone (one ``GroundTruthSegmentation`` call
on a new state, which renders the segmentation) and one default / fast RGB render.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import torchrl_psp  # noqa: F401  (sets MUJOCO_GL=egl when headless)


def plain_env(domain: str, task: str, fast: bool, seed: int = 0):
    from dm_control import suite
    from torchrl.envs import DMControlWrapper

    from torchrl_psp.envs import set_fast_rendering

    dm_env = suite.load(domain, task, task_kwargs={"random": seed})
    env = DMControlWrapper(
        dm_env,
        from_pixels=True,
        pixels_only=True,
        frame_skip=2,
        render_kwargs={"height": 64, "width": 64, "camera_id": 0},
    )
    if fast:
        set_fast_rendering(dm_env.physics)
    return env


def frames_per_second(env, steps: int) -> float:
    env.reset()
    env.rollout(5, break_when_any_done=False)  # warm up (contexts, caches)
    start = time.perf_counter()
    env.rollout(steps, break_when_any_done=False)
    return steps / (time.perf_counter() - start)


def segmentation_cost_ms(domain: str, task: str, repeats: int = 200) -> float:
    """Per-frame cost of GroundTruthSegmentation alone, on new physics states."""
    from torchrl_psp.envs import GroundTruthSegmentation, make_env

    env = make_env(domain, task)
    transform = GroundTruthSegmentation()
    env.append_transform(transform)
    td = env.reset()
    physics = env.base_env._env.physics
    action_dim = env.action_spec.shape[-1]
    total = 0.0
    for _ in range(repeats):
        physics.step()  # a new state: the segmentation cache cannot be used
        physics.set_control(np.random.uniform(-1, 1, action_dim))
        start = time.perf_counter()
        transform._call(td)
        total += time.perf_counter() - start
    return 1e3 * total / repeats


def render_cost_ms(domain: str, task: str, fast: bool, repeats: int = 100) -> float:
    from dm_control import suite

    from torchrl_psp.envs import set_fast_rendering

    physics = suite.load(domain, task).physics
    if fast:
        set_fast_rendering(physics)
    physics.render(64, 64, camera_id=0)
    start = time.perf_counter()
    for _ in range(repeats):
        physics.render(64, 64, camera_id=0)
    return 1e3 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", default="cheetah")
    parser.add_argument("--task", default="run")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from torchrl_psp.envs import make_env

    d, t = args.domain, args.task
    variants = {
        "plain DMControlWrapper, default render": lambda: plain_env(d, t, fast=False),
        "plain DMControlWrapper, fast render": lambda: plain_env(d, t, fast=True),
        "make_env, no distractor": lambda: make_env(d, t),
        "make_env, reafferent + GT segmentation": lambda: make_env(
            d, t, distractor="reafferent", segmentation="gt"
        ),
        "make_env, video + GT segmentation": lambda: make_env(
            d, t, distractor="video", segmentation="gt"
        ),
    }
    envs = {name: build() for name, build in variants.items()}
    results: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(args.rounds):
        for name, env in envs.items():
            results[name].append(frames_per_second(env, args.steps))
    baseline = statistics.median(results["plain DMControlWrapper, default render"])

    print(f"\n{d}-{t}, 64x64 pixels, action repeat 2, {args.steps} steps x {args.rounds} rounds")
    print(f"{'variant':<42} {'frames/s':>9} {'ms/frame':>9} {'vs plain':>9}")
    for name, values in results.items():
        fps = statistics.median(values)
        print(f"{name:<42} {fps:>9.1f} {1e3 / fps:>9.2f} {fps / baseline:>8.2f}x")
    print()
    print(f"{'one RGB render, default settings':<42} {render_cost_ms(d, t, False):>8.2f} ms")
    print(f"{'one RGB render, fast settings':<42} {render_cost_ms(d, t, True):>8.2f} ms")
    print(f"{'GT segmentation alone, per frame':<42} {segmentation_cost_ms(d, t):>8.2f} ms")


if __name__ == "__main__":
    main()
