"""``run_all``'s record of each process in ``invocations.csv``: written at the start,
refreshed while the process runs (so a killed launcher leaves a line), final at the end."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from torchrl_psp.study.launcher import INVOCATIONS_COLUMNS, INVOCATIONS_FILE, RunSpec, run_all
from torchrl_psp.study.runs import DONE_MARKER


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _spec(run_dir: Path, script: str) -> RunSpec:
    return RunSpec("cartpole-swingup", "dreamer", 0, run_dir, "new", [sys.executable, "-c", script])


def test_running_process_has_a_line_without_exit_code(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # the child copies the invocations file as it sees it while running (after at least
    # one heartbeat), then marks the run done
    script = (
        "import shutil, time, pathlib; time.sleep(0.5); "
        f"d = pathlib.Path({str(run_dir)!r}); "
        f"shutil.copy(d / {INVOCATIONS_FILE!r}, d / 'seen.csv'); "
        f"(d / {DONE_MARKER!r}).touch()"
    )
    results = run_all(
        [_spec(run_dir, script)], echo=lambda _: None, heartbeat=0.1, poll_interval=0.05
    )
    assert results == {"cartpole-swingup/dreamer/seed0": 0}

    seen = _rows(run_dir / "seen.csv")
    assert len(seen) == 1 and seen[0]["exit_code"] == ""
    assert list(seen[0]) == list(INVOCATIONS_COLUMNS)

    final = _rows(run_dir / INVOCATIONS_FILE)
    assert len(final) == 1
    assert final[0]["start"] == seen[0]["start"] and final[0]["exit_code"] == "0"
    assert float(final[0]["seconds"]) >= 0.5
    end, start, seconds = (float(final[0][k]) for k in ("end", "start", "seconds"))
    assert abs(end - start - seconds) < 0.1


def test_a_second_process_appends_its_own_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    header = ",".join(INVOCATIONS_COLUMNS) + "\n"
    # a process that was killed with its launcher: last seen 600 s after it started
    (run_dir / INVOCATIONS_FILE).write_text(header + "100.000,700.000,600.0,,1,1,2,Some CPU\n")
    script = f"import pathlib; (pathlib.Path({str(run_dir)!r}) / {DONE_MARKER!r}).touch()"
    run_all([_spec(run_dir, script)], echo=lambda _: None)

    rows = _rows(run_dir / INVOCATIONS_FILE)
    assert len(rows) == 2
    assert rows[0] == dict(
        zip(INVOCATIONS_COLUMNS, "100.000,700.000,600.0,,1,1,2,Some CPU".split(","))
    )
    assert rows[1]["exit_code"] == "0"
