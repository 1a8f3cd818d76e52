"""RunLogger: the per-episode table that a run stopped at a wall-clock budget keeps."""

from __future__ import annotations

import csv

from torchrl_psp.training.loggers import EPISODE_COLUMNS, RunLogger


def test_each_episode_is_one_flushed_line_appended_on_resume(tmp_path):
    logger = RunLogger(tmp_path, "run", wandb="disabled")
    logger.episode(env_steps=1000, agent_steps=125, updates=0, ret=107.5, length=125)
    # read before close: the line is on disk already
    with (tmp_path / "logs" / "episodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(EPISODE_COLUMNS)
    assert rows[0]["env_steps"] == "1000" and rows[0]["return"] == "107.5"
    logger.close()
    resumed = RunLogger(tmp_path, "run", wandb="disabled")  # a resumed run appends
    resumed.episode(env_steps=2000, agent_steps=250, updates=47, ret=58.25, length=125)
    with (tmp_path / "logs" / "episodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["agent_steps"], r["updates"], r["return"]) for r in rows] == [
        ("125", "0", "107.5"),
        ("250", "47", "58.25"),
    ]
    assert float(rows[1]["time"]) >= float(rows[0]["time"])
