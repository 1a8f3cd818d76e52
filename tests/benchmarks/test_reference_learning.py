"""benchmarks/reference_learning.py: matched commands, both sides' episode tables, the report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "reference_learning.py"
_SPEC = importlib.util.spec_from_file_location("reference_learning", _PATH)
reference_learning = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(reference_learning)


def test_every_matched_setting_reaches_both_commands():
    ours = reference_learning.our_command(8, 3, Path("/tmp/run"))
    official = reference_learning.official_command(Path("py"), 8, 3, Path("/tmp/log"))
    for value, key, flag in reference_learning.MATCHED.values():
        if key is not None:
            assert f"{key}={reference_learning._num(value)}" in ours
        if flag is not None:
            i = official.index(flag)
            assert official[i + 1] == reference_learning._num(value)
    assert "env.frame_skip=8" in ours and "seed=3" in ours
    assert official[official.index("--env.dmc.repeat") + 1] == "8"
    assert official[official.index("--configs") + 2] == "size1m"
    assert official[official.index("--batch_length") + 1] == "16"
    assert official[official.index("--report_length") + 1] == "16"


def test_official_episodes_steps_and_updates(tmp_path):
    lines = [
        # the official logger's step is policy steps x repeat (env steps)
        {"step": 800, "episode/score": 12.5, "episode/length": 126},
        {"step": 2048, "episode/score": 30.0, "episode/length": 126},
        {"step": 2400, "train/opt/updates": 20.0},  # the optimiser's logged count
        {"step": 3200, "train/opt/updates": 60.0},
        {"step": 3000, "episode/score": 55.0, "episode/length": 126},
        {"step": 4000, "episode/score": 80.0, "episode/length": 126},
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    rows = reference_learning.official_episodes(tmp_path, action_repeat=8)
    assert [r["env_steps"] for r in rows] == [800, 2048, 3000, 4000]
    assert [r["agent_steps"] for r in rows] == [100, 256, 375, 500]
    # before the first log, the schedule (16 x 16 = 256 replayed steps per update, ratio
    # 128): none before 256 policy steps, one at 256; between logs, interpolated:
    # 20 + 40 * 600 / 800 = 50; after the last log, the last count
    assert [r["updates"] for r in rows] == [0, 1, 50, 60]
    assert [r["return"] for r in rows] == [12.5, 30.0, 55.0, 80.0]


def test_return_near_and_table(tmp_path):
    rows = [
        {"env_steps": 1000.0 * i, "return": float(i), "updates": 10.0 * i} for i in range(1, 11)
    ]
    # episodes ending in (3,000, 6,000]: 4, 5, 6 -> 5.0
    assert reference_learning.mean_return_between(rows, 3000, 6000) == pytest.approx(5.0)
    ar = tmp_path / "ar8"
    ar.mkdir()
    full = [{**r, "agent_steps": r["env_steps"] / 8, "length": 125} for r in rows]
    reference_learning._write_csv(ar / "ours_seed0.csv", full)
    reference_learning._write_csv(ar / "official_seed0.csv", full[:6])
    (ar / "pair_seed0.json").write_text(json.dumps({"minutes": 1}))
    table = reference_learning.summarize(tmp_path, {8: "123.6 +- 71.4"})
    ours_line = next(line for line in table.splitlines() if "| ours |" in line)
    # ours: 10 episodes, first five 1..5 -> 3.0, last five 6..10 -> 8.0, in the second half
    # of the official's env steps (3,000, 6,000]: 4..6 -> 5.0, best 10
    assert (
        ours_line == "| 8 | ours | 0 | 10,000 | 100 | 10 | 3.0 | 8.0 | 5.0 | 10.0 | 123.6 +- 71.4 |"
    )
    reference_learning.draw(tmp_path, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0
