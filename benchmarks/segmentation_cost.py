"""Cost and quality of the segmenters of ``torchrl_psp.segmentation``.

Two measurements (both by default):

* ``speed``: frames per second of each segmenter on 64x64 frames -- the ground-truth
  transform (through its env), the weight-free segmenters, SAM vit_b (random weights:
  no checkpoint can be downloaded here; the cost does not depend on the weight values,
  and every mask is kept so that the filtering, NMS and painting run on all of them)
  at the chosen points per side and encoder input sizes, PerSAM-F vit_b, and cache hits.
* ``quality``: the weight-free segmenters against the ground-truth transform on
  distracted DeepMind Control frames (see ``docs/segmentation.rst`` for the metrics).

Examples::

    python benchmarks/segmentation_cost.py speed --device cpu
    python benchmarks/segmentation_cost.py speed --device cuda --amp bf16 --frames 256
    python benchmarks/segmentation_cost.py quality --steps 50
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

TASKS = (
    ("cheetah", "run"),
    ("walker", "walk"),
    ("hopper", "stand"),
    ("cartpole", "swingup"),
    ("reacher", "easy"),
    ("finger", "spin"),
)
DISTRACTORS = ("none", "reafferent", "video")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(fn, n_frames: int, device: torch.device, repeats: int = 1, warmup: bool = True) -> float:
    """Frames per second of ``fn()`` (which processes ``n_frames``), after one warm-up."""
    if warmup:
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return n_frames * repeats / (time.perf_counter() - start)


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    """Distinct 64x64 frames: renders of cheetah under a video background."""
    from torchrl_psp.envs import make_env

    env = make_env("cheetah", "run", distractor="video", seed=seed)
    torch.manual_seed(seed)
    return env.rollout(n, break_when_any_done=False)["next", "pixels"].clone()


def speed(args) -> list[dict]:
    from segment_anything import sam_model_registry

    from torchrl_psp.envs import make_env
    from torchrl_psp.segmentation import (
        ColorTaskMask,
        PerSAMSegmentation,
        SAMSegmentation,
        SuperpixelSegmentation,
        reference_from_env,
    )

    try:
        from torchrl_psp.segmentation.sam import core as sam_core
    except ImportError:  # the layout before the torchrl_psp.segmentation.sam subpackage
        from torchrl_psp.segmentation import sam_core

    device = torch.device(args.device)
    amp = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    rows = []

    def add(name, config, fps, **extra):
        rows.append({"segmenter": name, "config": config, "frames_per_s": fps, **extra})
        print(f"{name:28s} {config:44s} {fps:10.2f} frames/s {extra or ''}", flush=True)

    # Ground truth: env steps with and without the GT transform.
    steps = args.gt_steps
    rates = {}
    for seg in ("none", "gt"):
        env = make_env("cheetah", "run", segmentation=seg, seed=0)
        rates[seg] = _rate(
            lambda env=env: env.rollout(steps, break_when_any_done=False),
            steps,
            torch.device("cpu"),
        )
    gt_cost = 1 / rates["gt"] - 1 / rates["none"]
    add("GroundTruthSegmentation", "env steps/s with GT", rates["gt"])
    add("GroundTruthSegmentation", "GT transform alone (difference)", 1 / max(gt_cost, 1e-9))

    frames = _frames(max(args.frames, args.cpu_frames))
    reference = reference_from_env(make_env("cheetah", "run", segmentation="gt", seed=100))
    cpu = torch.device("cpu")
    felz = SuperpixelSegmentation()
    add(
        "SuperpixelSegmentation",
        "felzenszwalb (default)",
        _rate(lambda: felz.segment(frames), len(frames), cpu),
    )
    slic = SuperpixelSegmentation("slic")
    add(
        "SuperpixelSegmentation",
        "slic n_segments=200",
        _rate(lambda: slic.segment(frames), len(frames), cpu),
    )
    color = ColorTaskMask(reference)
    add(
        "ColorTaskMask",
        "bins=64 (default)",
        _rate(lambda: color.segment(frames), len(frames), cpu, 10),
    )

    sam = sam_model_registry["vit_b"]().eval().to(device)  # random weights
    keep_all = {"pred_iou_thresh": None, "stability_score_thresh": None}
    n = args.frames if device.type == "cuda" else min(args.frames, args.cpu_sam_frames)
    sam_frames = frames[:n].to(device)
    for size in args.encoder_sizes:
        geometry = sam_core.frame_geometry(sam, 64, 64, size)
        slow = device.type == "cpu" and size >= 1024  # minutes per frame: 1 frame, no warm-up
        x = sam_core.preprocess(sam, sam_frames[: 1 if slow else args.frames_per_batch], geometry)

        def encode(x=x):
            with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                sam_core.encode(sam, x)

        add(
            "SAM vit_b encoder only",
            f"input {size}, batch {len(x)}",
            _rate(encode, len(x), device, warmup=not slow),
        )
        for pps in args.points_per_side:
            if slow and pps > args.cpu_max_points_at_1024:
                print(
                    f"(skipped on CPU: input {size}, {pps}x{pps} points; see --cpu-max-points-at-1024)"
                )
                continue
            transform = SAMSegmentation(
                sam,
                points_per_side=pps,
                encoder_input_size=size,
                frames_per_batch=args.frames_per_batch,
                points_per_batch=args.points_per_batch,
                amp_dtype=amp,
                cache_size=0,
                device=device,
                **keep_all,
            )
            m = 1 if slow else n
            fps = _rate(
                lambda t=transform, m=m: t.segment(sam_frames[:m]), m, device, warmup=not slow
            )
            add("SAMSegmentation vit_b", f"input {size}, {pps}x{pps} points", fps, frames=m)
        persam = PerSAMSegmentation(
            reference,
            sam=sam,
            encoder_input_size=size,
            amp_dtype=amp,
            cache_size=0,
            frames_per_batch=args.frames_per_batch,
            device=device,
        )
        m = 1 if slow else n
        fps = _rate(lambda t=persam, m=m: t.segment(sam_frames[:m]), m, device, warmup=not slow)
        add(
            "PerSAMSegmentation vit_b",
            f"PerSAM-F, input {size}",
            fps,
            frames=m,
            fine_tune_s=round(persam.fine_tune_seconds, 3),
        )
    cached = SAMSegmentation(
        sam, points_per_side=2, encoder_input_size=min(args.encoder_sizes), device=device
    )
    repeated = sam_frames[:4].repeat(16, 1, 1, 1)
    cached.segment(sam_frames[:4])
    add(
        "SAMSegmentation vit_b",
        "cache hits (repeated frames)",
        _rate(lambda: cached.segment(repeated), len(repeated), device, 5),
    )
    return rows


def quality(args) -> list[dict]:
    from torchrl_psp.envs import make_env
    from torchrl_psp.segmentation import ColorTaskMask, SuperpixelSegmentation, reference_from_env
    from torchrl_psp.segmentation import metrics as M

    segmenters = {
        "felzenszwalb": SuperpixelSegmentation(),
        "slic": SuperpixelSegmentation("slic"),
    }
    rows = []
    header = f"{'task':18s} {'distractor':10s} {'segmenter':13s}  BR    BR-task  BP    ABO   ATI   seg/frame  | ColorTaskMask IoU"
    print(header)
    for domain, task in TASKS:
        for distractor in args.distractors:
            reference = reference_from_env(
                make_env(
                    domain, task, distractor=distractor, segmentation="gt", seed=args.seed + 100
                )
            )
            env = make_env(domain, task, distractor=distractor, segmentation="gt", seed=args.seed)
            torch.manual_seed(args.seed)
            td = env.rollout(args.steps, break_when_any_done=False)["next"]
            pixels, gt, task_mask = td["pixels"], td["segments"].long(), td["task_mask"]
            color_iou = M.mask_iou(ColorTaskMask(reference).segment(pixels), task_mask)
            for name, segmenter in segmenters.items():
                pred = segmenter.segment(pixels).long()
                precision, recall = M.boundary_precision_recall(pred, gt)
                row = {
                    "task": f"{domain}-{task}",
                    "distractor": distractor,
                    "segmenter": name,
                    "boundary_recall": recall,
                    "task_boundary_recall": M.boundary_precision_recall(pred, task_mask.long())[1],
                    "boundary_precision": precision,
                    "best_match_iou": M.best_match_iou(pred, gt),
                    "achievable_task_iou": M.achievable_task_iou(pred, task_mask),
                    "segments_per_frame": M.segments_per_frame(pred),
                    "color_task_mask_iou": color_iou,
                }
                rows.append(row)
                print(
                    f"{row['task']:18s} {distractor:10s} {name:13s} {recall:5.3f} {row['task_boundary_recall']:6.3f}"
                    f"  {precision:5.3f} {row['best_match_iou']:5.3f} {row['achievable_task_iou']:5.3f}"
                    f" {row['segments_per_frame']:8.1f}   | {color_iou:5.3f}",
                    flush=True,
                )
    print("\nMean over tasks:")
    for name in segmenters:
        for distractor in args.distractors:
            sel = [r for r in rows if r["segmenter"] == name and r["distractor"] == distractor]
            mean = {
                k: sum(r[k] for r in sel) / len(sel) for k in sel[0] if isinstance(sel[0][k], float)
            }
            print(
                f"{name:13s} {distractor:10s} BR {mean['boundary_recall']:.3f}  BR-task {mean['task_boundary_recall']:.3f}"
                f"  BP {mean['boundary_precision']:.3f}  ABO {mean['best_match_iou']:.3f}"
                f"  ATI {mean['achievable_task_iou']:.3f}  seg/frame {mean['segments_per_frame']:.0f}"
                f"  ColorTaskMask IoU {mean['color_task_mask_iou']:.3f}"
            )
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Runs the measurements; prints the tables and returns the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", default="all", choices=("speed", "quality", "all"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"))
    parser.add_argument("--frames", type=int, default=64, help="frames per SAM measurement on GPU")
    parser.add_argument(
        "--cpu-sam-frames", type=int, default=4, help="frames per SAM measurement on CPU"
    )
    parser.add_argument(
        "--cpu-max-points-at-1024",
        type=int,
        default=8,
        help="on CPU, skip SAM at input 1024 with more points per side (minutes per frame)",
    )
    parser.add_argument(
        "--gt-steps", type=int, default=100, help="env steps of the ground-truth measurement"
    )
    parser.add_argument(
        "--cpu-frames",
        type=int,
        default=64,
        help="frames rendered for the CPU segmenters (at least --frames are rendered)",
    )
    parser.add_argument("--frames-per-batch", type=int, default=8)
    parser.add_argument("--points-per-batch", type=int, default=256)
    parser.add_argument("--points-per-side", type=int, nargs="+", default=[16, 8])
    parser.add_argument("--encoder-sizes", type=int, nargs="+", default=[1024, 256])
    parser.add_argument("--steps", type=int, default=50, help="frames per task for quality")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--distractors", nargs="+", default=list(DISTRACTORS))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    for name in ("frames", "cpu_sam_frames", "gt_steps", "cpu_frames", "frames_per_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer.")
    if args.threads:
        torch.set_num_threads(args.threads)
    info = {
        "torch": torch.__version__,
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "amp": args.amp,
    }
    print(json.dumps(info))
    results = {"info": info}
    if args.what in ("speed", "all"):
        results["speed"] = speed(args)
    if args.what in ("quality", "all"):
        results["quality"] = quality(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
