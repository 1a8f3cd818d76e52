"""The study runner end to end, as a user runs it: ``recipes/compare.py --study cpu`` with
the real recipe at smoke size (two variants x one seed, 300 env steps each), the
published results, the summary built from them, and a second invocation that runs
nothing."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from pathlib import Path

COMPARE = Path(__file__).resolve().parents[2] / "recipes" / "compare.py"
SMOKE = [
    "preset=smoke",
    "train.total_env_steps=300",
    "collector.prefill_steps=50",
    "replay.replay_ratio=8",  # 12 updates: the updates are what takes time on a busy machine
    "eval.every_env_steps=200",
    "eval.max_steps=20",
    "eval.video=false",
    "logger.wandb=disabled",
    "logger.progress_bar=false",
]


def compare(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(COMPARE), *argv], capture_output=True, text=True, timeout=900
    )


def test_the_study_runner_end_to_end_at_smoke_size(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    argv = ["--study", "cpu", "--groups", "reafferent", "--variants", "dreamer", "psp"]
    argv += ["--seeds", "0", "--root", str(work), "--results", str(results), "--", *SMOKE]
    first = compare(*argv)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert first.stdout.count("[published]") == 2
    study = results / "cpu"
    for variant in ("dreamer", "psp"):
        published = study / "reafferent" / variant / "seed0"
        assert (published / "done").is_file() and (published / "config.yaml").is_file()
        assert not (published / "checkpoint.pt").exists() and not (published / "replay").exists()
        assert (published / "figures" / "reconstruction_00000300.png").is_file()
        # the agent / background errors, logged at both evaluations (200 and 300 env steps)
        for region in ("agent", "background"):
            lines = (published / f"logs/scalars/eval/recon_error_{region}.csv").read_text()
            rows = [line.split(",") for line in lines.splitlines() if line]
            assert [int(step) for step, _ in rows] == [200, 300]
            assert all(0 < float(value) < 1 for _, value in rows), (variant, region, rows)
    scores = (study / "scores.md").read_text()
    assert scores.startswith("| task | dreamer | psp |")
    assert "1 seed per cell, at 300 env steps" in scores
    errors = list(csv.reader(io.StringIO((study / "region_errors.csv").read_text())))
    assert [row[:2] for row in errors[1:]] == [
        ["cartpole-swingup", "dreamer"],
        ["cartpole-swingup", "psp"],
    ]
    assert all(math.isfinite(float(row[2])) and row[4] == "1" for row in errors[1:])
    for name in ("learning_curves.png", "region_errors.png", "summary.inc", "wall_clock.csv"):
        assert (study / name).stat().st_size > 0, name
    wall_clock = list(csv.DictReader(io.StringIO((study / "wall_clock.csv").read_text())))
    assert [row["invocations"] for row in wall_clock] == ["1", "1"]
    assert all(float(row["wall_clock_min"]) > 0 for row in wall_clock)

    # the second invocation skips both runs: nothing is started, the summary is rewritten
    second = compare(*argv)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("[skip]") == 2 and "[start]" not in second.stdout
    log = work / "reafferent" / "cartpole-swingup" / "psp" / "seed0" / "invocations.csv"
    assert len(log.read_text().splitlines()) == 2  # header + the one process of the first
