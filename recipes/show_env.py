"""Shows what the agent sees: writes an image strip of a distracted DMC environment.

Rows: the raw render, the distracted frame the agent gets, the ground-truth segments and
the task mask, for a few steps of a random policy::

    python recipes/show_env.py                       # reafferent cheetah-run
    python recipes/show_env.py --domain hopper --task stand --distractor video
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import torchrl_psp  # noqa: F401  (headless rendering set-up, before dm_control)
from torchrl_psp.envs import DISTRACTORS, make_env, renderer_for
from torchrl_psp.figures import colorize_segments, image_grid, mask_to_rgb, save_image


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", default="cheetah")
    parser.add_argument("--task", default="run")
    parser.add_argument("--distractor", default="reafferent", choices=DISTRACTORS)
    parser.add_argument("--compositing", default="segmentation")
    parser.add_argument(
        "--video", default=None, help="folder of videos/images (default: procedural)"
    )
    parser.add_argument("--frames", type=int, default=8, help="frames in the strip")
    parser.add_argument("--every", type=int, default=5, help="env steps between frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="demo_output")
    args = parser.parse_args(argv)

    env = make_env(
        args.domain,
        args.task,
        distractor=args.distractor,
        segmentation="gt",
        compositing=args.compositing,
        video_source=args.video,
        seed=args.seed,
    )
    renderer = renderer_for(env.base_env._env.physics)
    camera = env.transform[1].camera_id
    torch.manual_seed(args.seed)
    td = env.reset()
    rows: list[list] = [[], [], [], []]
    for frame in range(args.frames):
        if frame:
            for _ in range(args.every):
                td = env.rand_step(td)["next"]
        rows[0].append(renderer.rgb(64, 64, camera))
        rows[1].append(td["pixels"])
        rows[2].append(colorize_segments(td["segments"]))
        rows[3].append(mask_to_rgb(td["task_mask"]))
    name = f"{args.distractor}_{args.domain}_{args.task}.png"
    path = save_image(Path(args.out) / name, image_grid(rows, scale=3))
    print(f"rows: raw render | what the agent sees | GT segments | task mask\nwrote {path}")
    return path


if __name__ == "__main__":
    main()
