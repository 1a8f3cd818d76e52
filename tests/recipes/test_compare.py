"""recipes/compare.py and the modules of torchrl_psp.study (runs, scores,
summary, launcher), on fabricated run directories."""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import shlex
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import yaml

from torchrl_psp.study.launcher import plan_runs
from torchrl_psp.study.runs import find_runs, read_run
from torchrl_psp.study.scores import score_table
from torchrl_psp.study.summary import learning_curves_grid, write_summary

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
STEPS = [0, 5000, 10000]
# Final evaluation returns (at 10,000 env steps) of seeds 0, 1, 2, and by hand:
FINALS = {
    ("cheetah-run", "dreamer"): [100.0, 110.0, 120.0],  # 110.0 +- 10.0
    ("cheetah-run", "psp"): [300.0, 330.0, 390.0],  # 340.0 +- sqrt(4200 / 2) = 45.8
    ("hopper-stand", "dreamer"): [5.0, 7.0, 9.0],  # 7.0 +- 2.0
    ("hopper-stand", "psp"): [1.0, 2.0, 3.0],  # 2.0 +- 1.0
}


def load_compare():
    spec = importlib.util.spec_from_file_location("compare_recipe", RECIPES / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_run(
    root: Path,
    task: str,
    variant: str,
    seed: int,
    lines: list[tuple[float, float]] | None,
    *,
    done: bool = True,
    distractor: str = "reafferent",
    folder: str | None = None,
) -> Path:
    """A run directory as the recipe leaves it: config.yaml, eval/return.csv, done."""
    run_dir = root / (folder or f"{task}/{variant}/seed{seed}")
    run_dir.mkdir(parents=True)
    domain, task_name = task.split("-", 1)
    config = {
        "variant": variant,
        "seed": seed,
        "preset_name": "cpu",
        "env": {"domain": domain, "task": task_name, "distractor": distractor},
        "train": {"total_env_steps": 10000},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    if lines is not None:
        csv_path = run_dir / "logs" / "scalars" / "eval" / "return.csv"
        csv_path.parent.mkdir(parents=True)
        csv_path.write_text("".join(f"{step},{value}\n" for step, value in lines))
    if done:
        (run_dir / "done").write_text("finished\n")
    return run_dir


def curve(final: float) -> list[tuple[float, float]]:
    return [(0, 0.0), (5000, final / 2), (10000, final)]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """2 tasks x 2 variants x 3 seeds with the FINALS above."""
    root = tmp_path / "study"
    for (task, variant), finals in FINALS.items():
        for seed, final in enumerate(finals):
            lines = curve(final)
            if (task, variant, seed) == ("cheetah-run", "psp", 2):
                # a resumed run: steps 5000 and 10000 evaluated twice, the last value counts
                lines = [(0, 0.0), (5000, 7.0), (10000, 999.0), (5000, final / 2), (10000, final)]
            make_run(root, task, variant, seed, lines)
    return root


# ----------------------------------------------------------------------------- reading
def test_find_runs_reads_config_and_curves(study):
    runs = find_runs(study)
    assert len(runs) == 12
    assert [(r.task_name, r.variant, r.seed) for r in runs[:4]] == [
        ("cheetah-run", "dreamer", 0),
        ("cheetah-run", "dreamer", 1),
        ("cheetah-run", "dreamer", 2),
        ("cheetah-run", "psp", 0),
    ]
    resumed = runs[5]
    assert (resumed.variant, resumed.seed) == ("psp", 2)
    assert resumed.steps.tolist() == STEPS and resumed.returns.tolist() == [0.0, 195.0, 390.0]
    assert all(r.done and r.distractor == "reafferent" for r in runs)


def test_read_run_fallbacks(tmp_path):
    # Hydra's own dump only, variant as a config group, a header line in the CSV
    run_dir = tmp_path / "walker-walk" / "sd_gt" / "seed4"
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"variant": {"name": "sd_gt", "reconstruction": "masked"}, "seed": 4,
              "env": {"domain": "walker", "task": "walk"}}  # fmt: skip
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "logs/scalars/eval").mkdir(parents=True)
    (run_dir / "logs/scalars/eval/return.csv").write_text("step,value\n0,1\n2000,3.5\n")
    run = read_run(run_dir)
    assert (run.task_name, run.variant, run.seed, run.done) == ("walker-walk", "sd_gt", 4, False)
    assert run.final_step == 2000 and run.final_return == 3.5
    assert [r.path for r in find_runs(tmp_path)] == [run_dir]  # found once, not twice
    # seed and variant missing from the config: read from the <variant>/seed<s> layout
    other = tmp_path / "x" / "psp" / "seed7"
    other.mkdir(parents=True)
    (other / "config.yaml").write_text(yaml.safe_dump({"env": {"domain": "a", "task": "b"}}))
    assert (read_run(other).variant, read_run(other).seed) == ("psp", 7)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.yaml").write_text("seed: 1\n")
    with pytest.warns(UserWarning, match="cannot read"):
        assert len(find_runs(tmp_path)) == 2


# ----------------------------------------------------------------------------- the table
def test_score_table_mean_std_bold_and_caption(study):
    table = score_table(find_runs(study), variants=["dreamer", "psp"])
    assert table.rows == ["cheetah-run", "hopper-stand"]
    assert table.variants == ["dreamer", "psp"]
    psp = table.cells[("cheetah-run", "psp")]
    assert psp.n == 3 and psp.mean == 340.0
    assert math.isclose(psp.std, math.sqrt((40**2 + 10**2 + 50**2) / 2))
    assert math.isclose(psp.sem, psp.std / math.sqrt(3))
    assert table.best("cheetah-run") == {"psp"} and table.best("hopper-stand") == {"dreamer"}
    markdown = table.to_markdown()
    assert markdown.splitlines()[:4] == [
        "| task | dreamer | psp |",
        "|---|---:|---:|",
        "| cheetah-run | 110.0 ± 10.0 | **340.0 ± 45.8** |",
        "| hopper-stand | **7.0 ± 2.0** | 2.0 ± 1.0 |",
    ]
    caption = markdown.splitlines()[-1]
    assert caption.startswith("Table: Final evaluation return")
    assert "mean ± std" in caption and "3 seeds per cell" in caption
    assert "at 10,000 env steps" in caption and "unfinished" not in caption
    latex = table.to_latex()
    assert "\\begin{tabular}{lcc}" in latex and "Task & dreamer & psp \\\\" in latex
    assert "cheetah-run & $110.0 \\pm 10.0$ & $\\mathbf{340.0 \\pm 45.8}$ \\\\" in latex
    assert "hopper-stand & $\\mathbf{7.0 \\pm 2.0}$ & $2.0 \\pm 1.0$ \\\\" in latex
    assert "\\caption{Final evaluation return" in latex and "3 seeds per cell" in latex
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert [r["task"] for r in rows] == ["cheetah-run", "hopper-stand"]
    assert float(rows[0]["psp_mean"]) == 340.0 and rows[0]["psp_n"] == "3"
    assert math.isclose(float(rows[1]["dreamer_std"]), 2.0)
    assert math.isclose(float(rows[1]["psp_sem"]), 1 / math.sqrt(3), rel_tol=1e-5)


def test_column_and_row_order_follow_the_request(study):
    table = score_table(find_runs(study), variants=["psp", "dreamer"], tasks=["hopper-stand"])
    assert table.variants == ["psp", "dreamer"] and table.rows == ["hopper-stand", "cheetah-run"]
    default = score_table(find_runs(study))  # SPEC order: dreamer before psp
    assert default.variants == ["dreamer", "psp"]


def test_missing_seeds_unfinished_runs_and_distractors(study, tmp_path):
    # seed 2 of hopper-stand/psp never evaluated; seed 1 not finished; an extra distractor
    hopper_psp = study / "hopper-stand" / "psp"
    for seed in (1, 2):
        for item in sorted((hopper_psp / f"seed{seed}").rglob("*"), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
        (hopper_psp / f"seed{seed}").rmdir()
    make_run(study, "hopper-stand", "psp", 1, curve(4.0)[:2], done=False)  # last: 2.0 at 5000
    make_run(study, "hopper-stand", "psp", 2, None, done=False)
    table = score_table(find_runs(study))
    cell = table.cells[("hopper-stand", "psp")]
    assert cell.finals == [1.0, 2.0] and cell.final_steps == [10000.0, 5000.0]
    assert "| hopper-stand | **7.0 ± 2.0** | 1.5 ± 0.7 (n=2) |" in table.to_markdown()
    caption = table.caption()
    assert "2-3 seeds per cell" in caption and "at 5,000-10,000 env steps" in caption
    assert "1 of 11 runs unfinished" in caption
    finished = score_table(find_runs(study), finished_only=True)
    assert finished.cells[("hopper-stand", "psp")].finals == [1.0]
    # a task run with two distractors gets one row per distractor
    make_run(study, "cheetah-run", "psp", 0, curve(50.0), distractor="video", folder="video/a")
    rows = score_table(find_runs(study)).rows
    assert rows == ["cheetah-run [reafferent]", "cheetah-run [video]", "hopper-stand"]


# ----------------------------------------------------------------------------- curves
def test_learning_curves_grid_one_panel_per_task(study):
    fig = learning_curves_grid(find_runs(study), variants=["dreamer", "psp"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["cheetah-run", "hopper-stand"]
    cheetah = visible[0]
    assert len(cheetah.lines) == 2
    assert cheetah.lines[1].get_xdata().tolist() == STEPS
    assert np.allclose(cheetah.lines[1].get_ydata(), [0.0, 170.0, 340.0])  # psp, mean
    assert np.allclose(visible[1].lines[0].get_ydata(), [0.0, 3.5, 7.0])  # hopper dreamer
    # the same variant has the same colour in every panel
    assert cheetah.lines[0].get_color() == visible[1].lines[0].get_color()
    band = cheetah.collections[1].get_paths()[0].vertices  # psp's standard-error band
    top = band[np.isclose(band[:, 0], 10000), 1].max()
    assert math.isclose(top, 340.0 + math.sqrt(2100) / math.sqrt(3))


def test_write_summary_files(study):
    summary = write_summary(study, variants=["dreamer", "psp"])
    names = {p.name for p in summary.paths}
    assert names == {
        "scores.md", "scores.tex", "scores.csv", "runs.csv",
        "learning_curves.png", "learning_curves.pdf",
    }  # fmt: skip
    assert (study / "scores.md").read_text() == summary.markdown
    image = iio.imread(study / "learning_curves.png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100
    assert (study / "learning_curves.pdf").read_bytes().startswith(b"%PDF")
    runs = list(csv.DictReader(io.StringIO((study / "runs.csv").read_text())))
    assert len(runs) == 12 and runs[5]["final_return"] == "390" and runs[5]["done"] == "1"


# ----------------------------------------------------------------------------- the CLI
def expected_new(root: Path, variant: str, seed: int, extra: list[str]) -> str:
    run_dir = (root / "cheetah-run" / variant / f"seed{seed}").resolve()
    command = [
        sys.executable,
        str(RECIPES / "dreamer_psp.py"),
        f"variant={variant}",
        f"seed={seed}",
        "env.domain=cheetah",
        "env.task=run",
        *extra,
        f"hydra.run.dir={run_dir}",
    ]
    return shlex.join(command)


def test_dry_run_prints_commands_skips_done_and_resumes_unfinished(tmp_path, capsys):
    root = tmp_path / "study"
    make_run(root, "cheetah-run", "dreamer", 0, curve(1.0))  # finished
    make_run(root, "cheetah-run", "psp", 1, curve(1.0)[:1], done=False)  # unfinished
    extra = ["preset=cpu", "env.distractor=reafferent", "train.total_env_steps=20000"]
    argv = ["--variants", "dreamer", "psp", "--seeds", "0", "1", "--tasks", "cheetah-run"]
    code = load_compare().main([*argv, "--root", str(root), "--dry-run", "--", *extra])
    assert code == 0
    resumed = (root / "cheetah-run" / "psp" / "seed1").resolve()
    assert capsys.readouterr().out.splitlines() == [
        f"# done, skipped: {(root / 'cheetah-run' / 'dreamer' / 'seed0').resolve()}",
        expected_new(root, "dreamer", 1, extra),
        expected_new(root, "psp", 0, extra),
        f"# unfinished, resumed: {resumed}",
        # only what the recipe lets a resumed run change
        shlex.join(
            [
                sys.executable,
                str(RECIPES / "dreamer_psp.py"),
                "preset=cpu",
                "train.total_env_steps=20000",
                f"hydra.run.dir={resumed}",
                f"resume={resumed}",
            ]
        ),
    ]
    assert not (root / "cheetah-run" / "psp" / "seed0").exists()  # nothing ran
    assert not (root / "scores.md").exists()


def test_unfinished_run_with_another_config_is_not_resumed(tmp_path):
    root = tmp_path / "study"
    make_run(root, "cheetah-run", "psp", 0, None, done=False, distractor="video")
    specs = plan_runs(
        root, ["cheetah-run"], ["psp"], [0], ["env.distractor=reafferent"], recipe="r.py"
    )
    assert specs[0].status == "conflict"
    assert specs[0].conflicts == ["env.distractor=reafferent (stored: env.distractor=video)"]
    same = plan_runs(root, ["cheetah-run"], ["psp"], [0], ["env.distractor=video"], recipe="r.py")
    assert same[0].status == "resume"
    # a run that died before writing its config.yaml starts again
    (root / "cheetah-run" / "psp" / "seed1" / ".hydra").mkdir(parents=True)
    assert plan_runs(root, ["cheetah-run"], ["psp"], [1], recipe="r.py")[0].status == "new"


FAKE_RECIPE = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    args = dict(a.split("=", 1) for a in sys.argv[1:])
    run_dir = Path(args["hydra.run.dir"])
    with open(run_dir.parent.parent.parent / "calls.txt", "a") as calls:
        calls.write(" ".join(sys.argv[1:]) + "\\n")
    print("fake recipe in", run_dir)
    if "resume" not in args:
        env = {"domain": args["env.domain"], "task": args["env.task"]}
        config = {"variant": args["variant"], "seed": int(args["seed"]), "env": env}
        (run_dir / "config.yaml").write_text(repr(config))  # a YAML flow mapping
        if args["seed"] == "1":
            sys.exit("crash before the end")
    (run_dir / "logs/scalars/eval").mkdir(parents=True, exist_ok=True)
    seed = int(run_dir.name[4:])
    (run_dir / "logs/scalars/eval/return.csv").write_text(f"0,0\\n100,{10 * (seed + 1)}\\n")
    (run_dir / "done").write_text("finished\\n")
    """
)


def test_runs_in_parallel_reports_failures_then_resumes_them(tmp_path, capsys):
    recipe = tmp_path / "fake_recipe.py"
    recipe.write_text(FAKE_RECIPE)
    root = tmp_path / "study"
    argv = ["--variants", "psp", "--seeds", "0", "1", "2", "--tasks", "cheetah-run"]
    argv += ["--root", str(root), "--processes", "2", "--recipe", str(recipe)]
    compare = load_compare()
    assert compare.main(argv) == 1  # seed 1 crashed; the others ran
    out, err = capsys.readouterr()
    assert "1 run(s) failed" in err and "cheetah-run/psp/seed1" in err
    log = (root / "cheetah-run/psp/seed1/stdout.log").read_text()
    assert log.startswith("$ ") and "fake recipe in" in log and "crash before the end" in log
    assert "| cheetah-run | **20.0 ± 14.1** |" in out  # seeds 0 and 2: 10 and 30
    assert "2 seeds per cell, at 100 env steps" in out
    assert len((root / "calls.txt").read_text().splitlines()) == 3

    assert compare.main(argv) == 0  # done runs skipped, the crashed one resumed
    calls = (root / "calls.txt").read_text().splitlines()
    assert len(calls) == 4 and "resume=" in calls[-1] and "variant=" not in calls[-1]
    out = capsys.readouterr().out
    assert out.count("[skip]") == 2
    assert "| cheetah-run | **20.0 ± 10.0** |" in out  # 10, 20, 30
    assert (root / "learning_curves.png").is_file()


def test_summarize_only_runs_nothing(study, capsys):
    code = load_compare().main(["--root", str(study), "--summarize-only"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| cheetah-run | 110.0 ± 10.0 | **340.0 ± 45.8** |" in out
    assert (study / "scores.tex").is_file() and (study / "learning_curves.pdf").is_file()
    assert not (study / "cheetah-run" / "dreamer" / "seed0" / "stdout.log").exists()


@pytest.mark.parametrize("study_argv", [[], ["--study", "cpu"]])
def test_a_python_without_the_requirements_stops_before_any_run(
    tmp_path, capsys, monkeypatch, study_argv
):
    # What a checkout without `pip install -e .` gets: one clear error, exit status 2,
    # and no run directory (instead of every run failing at its first import).
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["pip", "no-such-dist>=1"]\n')
    compare = load_compare()
    monkeypatch.setattr(compare, "PYPROJECT", pyproject)
    root, results = tmp_path / "study", tmp_path / "results"
    argv = ["--variants", "psp", "--seeds", "0", "--root", str(root)]
    if study_argv:
        argv += study_argv + ["--results", str(results)]
    else:
        argv += ["--tasks", "cheetah-run"]
    assert compare.main(argv) == 2
    err = capsys.readouterr().err
    assert "lacks the project's requirements no-such-dist" in err
    assert "pip install -e" in err and sys.executable in err
    assert not root.exists() and not results.exists()
    assert compare.main(argv + ["--dry-run"]) == 0  # printing the commands needs nothing
