"""Publishing a study's runs (torchrl_psp/study/results.py, study_runner.py) and the
summary built from the published copies (regions.py, report.py), on fabricated runs and
a fake recipe (fast)."""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from torchrl_psp.study.launcher import INVOCATIONS_COLUMNS
from torchrl_psp.study.regions import region_error_table
from torchrl_psp.study.report import write_study_summary
from torchrl_psp.study.results import is_published, publish_run
from torchrl_psp.study.runs import find_runs, read_run
from torchrl_psp.study.studies import STUDIES
from torchrl_psp.study.study_runner import plan_study, run_study

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load_compare():
    spec = importlib.util.spec_from_file_location("compare_recipe", RECIPES / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def finished_run(run_dir: Path, variant: str = "psp", seed: int = 0, distractor: str = "video"):
    """A finished run directory as the recipe leaves it, big files included."""
    config = {
        "variant": variant,
        "seed": seed,
        "preset_name": "cpu_study",
        "env": {"domain": "cartpole", "task": "swingup", "distractor": distractor},
    }
    write(run_dir / "config.yaml", yaml.safe_dump(config))
    overrides = [f"variant={variant}", f"seed={seed}", f"hydra.run.dir={run_dir}"]
    write(run_dir / ".hydra/overrides.yaml", yaml.safe_dump(overrides))
    write(run_dir / ".hydra/hydra.yaml", "hydra: {runtime: {cwd: /somewhere}}\n")
    scalars = run_dir / "logs/scalars"
    write(scalars / "eval/return.csv", "0,10\n8000,200\n")
    write(scalars / "eval/recon_error_agent.csv", "0,0.02\n8000,0.004\n")
    write(scalars / "eval/recon_error_background.csv", "0,0.05\n8000,0.03\n")
    write(scalars / "train/updates.csv", "8000,100\n")
    write(run_dir / "logs/episodes.csv", "time,env_steps,agent_steps,updates,return,length\n")
    write(run_dir / "checkpoint.pt", "weights")
    write(run_dir / "replay/storage/pixels.memmap", "replay")
    write(run_dir / "videos/eval_00008000.mp4", "video")
    write(run_dir / "stdout.log", "progress bars\n")
    for step in (0, 8000):
        write(run_dir / f"figures/reconstruction_{step:08d}.png", f"panel {step}")
        write(run_dir / f"figures/sd_masks_{step:08d}.png", f"masks {step}")
    write(run_dir / "figures/learning_curve.png", "curve")
    write(run_dir / "done", "finished\n")
    return run_dir


def test_publish_copies_the_small_results_only(tmp_path):
    run_dir = finished_run(tmp_path / "work" / "run")
    target = tmp_path / "results" / "cpu" / "video" / "psp" / "seed0"
    publish_run(run_dir, target)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == [
        ".hydra/overrides.yaml",
        "config.yaml",
        "done",
        "figures/learning_curve.png",
        "figures/reconstruction_00008000.png",
        "figures/sd_masks_00008000.png",
        "logs/episodes.csv",
        "logs/scalars/eval/recon_error_agent.csv",
        "logs/scalars/eval/recon_error_background.csv",
        "logs/scalars/eval/return.csv",
    ]
    # the machine's paths stay out: Hydra's run directory is dropped from the overrides
    assert yaml.safe_load((target / ".hydra/overrides.yaml").read_text()) == [
        "variant=psp",
        "seed=0",
    ]
    assert is_published(target)
    run = read_run(target)  # the copy reads like a run directory
    assert (run.variant, run.seed, run.distractor, run.done) == ("psp", 0, "video", True)
    assert run.steps.tolist() == [0, 8000] and run.returns.tolist() == [10, 200]
    # republishing (an extended run) replaces the last figures
    write(run_dir / "figures/reconstruction_00016000.png", "panel 16000")
    publish_run(run_dir, target)
    assert [p.name for p in (target / "figures").glob("reconstruction_*")] == [
        "reconstruction_00016000.png"
    ]


def test_only_finished_runs_are_published(tmp_path):
    run_dir = finished_run(tmp_path / "run")
    (run_dir / "done").unlink()
    with pytest.raises(ValueError, match="is not a finished run"):
        publish_run(run_dir, tmp_path / "results")
    assert not (tmp_path / "results").exists()
    # a copy without its done marker (cut short) is not published
    write(tmp_path / "partial" / "config.yaml", "seed: 0\n")
    assert not is_published(tmp_path / "partial")


FAKE_RECIPE = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    args = dict(a.split("=", 1) for a in sys.argv[1:])
    run_dir = Path(args["hydra.run.dir"])
    with open(run_dir.parents[4] / "calls.txt", "a") as calls:
        calls.write(" ".join(sys.argv[1:]) + "\\n")
    env = {"domain": args["env.domain"], "task": args["env.task"],
           "distractor": args["env.distractor"]}
    config = {"variant": args["variant"], "seed": int(args["seed"]), "env": env}
    (run_dir / "config.yaml").write_text(repr(config))  # a YAML flow mapping
    scalars = run_dir / "logs/scalars/eval"
    scalars.mkdir(parents=True)
    final = {"dreamer": 100, "psp": 300}[args["variant"]] + 10 * int(args["seed"])
    (scalars / "return.csv").write_text(f"0,0\\n1000,{final}\\n")
    agent = {"dreamer": 0.004, "psp": 0.002}[args["variant"]] * (1 + int(args["seed"]))
    (scalars / "recon_error_agent.csv").write_text(f"1000,{agent}\\n")
    (scalars / "recon_error_background.csv").write_text("1000,0.05\\n")
    (run_dir / "figures").mkdir()
    (run_dir / "figures/reconstruction_00001000.png").write_bytes(b"png")
    (run_dir / "replay").mkdir()
    (run_dir / "replay/storage.bin").write_bytes(b"big")
    (run_dir / "done").write_text("finished\\n")
    """
)


def test_a_study_runs_publishes_then_skips_what_is_published(tmp_path, capsys):
    recipe = write(tmp_path / "fake_recipe.py", FAKE_RECIPE)
    work, results = tmp_path / "work", tmp_path / "results"
    argv = ["--study", "cpu", "--groups", "reafferent", "video", "--variants", "dreamer", "psp"]
    argv += ["--seeds", "0", "1", "--root", str(work), "--results", str(results)]
    argv += ["--recipe", str(recipe), "--processes", "2"]
    compare = load_compare()
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("[published]") == 8
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert len(calls) == 8 and all("preset=cpu_study" in call for call in calls)
    published = results / "cpu" / "reafferent" / "psp" / "seed1"
    assert is_published(published) and not (published / "replay").exists()
    # each process of a run is recorded: wall-clock and machine
    rows = list(csv.DictReader(io.StringIO((published / "invocations.csv").read_text())))
    assert list(rows[0]) == list(INVOCATIONS_COLUMNS) and len(rows) == 1
    assert rows[0]["exit_code"] == "0" and rows[0]["processes"] == "2"
    assert float(rows[0]["seconds"]) >= 0 and rows[0]["omp_threads"] == "1"

    # the summary, from the published copies: rows in the study's order
    scores = (results / "cpu" / "scores.md").read_text().splitlines()
    assert scores[:4] == [
        "| task | dreamer | psp |",
        "|---|---:|---:|",
        "| cartpole-swingup [reafferent] | 105.0 ± 7.1 | **305.0 ± 7.1** |",
        "| cartpole-swingup [video] | 105.0 ± 7.1 | **305.0 ± 7.1** |",
    ]
    regions = (results / "cpu" / "region_errors.md").read_text().splitlines()
    # agent: dreamer 4 and 8 (x 1e-3), psp 2 and 4: mean +- sample std
    assert (
        regions[2] == "| cartpole-swingup [reafferent] | dreamer | 6.00 ± 2.83 | 50.00 ± 0.00 | 2 |"
    )
    assert regions[3] == "| cartpole-swingup [reafferent] | psp | 3.00 ± 1.41 | 50.00 ± 0.00 | 2 |"
    for name in ("learning_curves.png", "region_errors.png", "wall_clock.csv", "summary.inc"):
        assert (results / "cpu" / name).is_file(), name
    fragment = (results / "cpu" / "summary.inc").read_text()
    assert "8 published run(s)" in fragment
    assert (
        ".. figure:: /results/cpu/video/psp/seed0/figures/reconstruction_00001000.png" in fragment
    )

    # a second invocation runs nothing: every run is published (even with no work folder)
    for item in sorted(work.rglob("*"), reverse=True):
        item.unlink() if item.is_file() else item.rmdir()
    assert compare.main(argv) == 0
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 8
    out = capsys.readouterr().out
    assert out.count("[skip]") == 8 and "[start]" not in out
    assert compare.main([*argv, "--dry-run"]) == 0
    assert capsys.readouterr().out.count("# published, skipped") == 8


def test_a_finished_run_is_published_without_running_again(tmp_path):
    recipe = write(tmp_path / "fake_recipe.py", FAKE_RECIPE)
    study = STUDIES["cpu"]
    work, results = tmp_path / "work", tmp_path / "results"
    select = dict(groups=["none"], variants=["dreamer", "psp"], seeds=[0], recipe=recipe)
    plan = plan_study(study, work, results, **select)
    finished_run(plan[0].spec.run_dir, "dreamer", 0, "none")  # ran, not yet published
    plan = plan_study(study, work, results, **select)
    assert [p.status for p in plan] == ["done", "new"]
    codes = run_study(plan, echo=lambda line: None, poll_interval=0.05)
    assert codes == {"none/cartpole-swingup/psp/seed0": 0}  # only the new one ran
    assert all(is_published(p.results_dir) for p in plan)
    assert [p.status for p in plan] == ["published", "published"]


def test_region_error_table_and_an_empty_study(tmp_path):
    # no published run: the fragment says so, and nothing else is written
    summary = write_study_summary(STUDIES["cpu"], tmp_path)
    assert [p.name for p in summary.paths] == ["summary.inc"]
    assert "has been published yet" in summary.paths[0].read_text()
    # runs without logged errors (env.segmentation=none) are left out of the error table
    for seed, agent in enumerate([0.001, 0.003, None]):
        run_dir = finished_run(
            tmp_path / "cpu" / "none" / "dreamer" / f"seed{seed}", "dreamer", seed, "none"
        )
        if agent is None:
            for region in ("agent", "background"):
                (run_dir / f"logs/scalars/eval/recon_error_{region}.csv").unlink()
        else:
            write(run_dir / "logs/scalars/eval/recon_error_agent.csv", f"0,1\n8000,{agent}\n")
    table = region_error_table(find_runs(tmp_path / "cpu"))
    cell = table.cells[("cartpole-swingup", "dreamer", "agent")]
    assert cell.seeds == [0, 1] and cell.final_steps == [8000.0, 8000.0]
    assert math.isclose(cell.mean, 0.002) and math.isclose(cell.std, math.sqrt(2) * 0.001)
    assert table.cells[("cartpole-swingup", "dreamer", "background")].finals == [0.03, 0.03]
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert rows == [
        {
            "task": "cartpole-swingup",
            "variant": "dreamer",
            "agent_mean": "0.002",
            "agent_std": f"{math.sqrt(2) * 0.001:.6g}",
            "agent_n": "2",
            "background_mean": "0.03",
            "background_std": "0",
            "background_n": "2",
        }
    ]
    summary = write_study_summary(STUDIES["cpu"], tmp_path)
    assert len(summary.runs) == 3 and "| cartpole-swingup | **200.0 ± 0.0** |" in summary.markdown
    assert np.isclose(float(rows[0]["agent_mean"]), 0.002)


def assert_valid_rst(text: str) -> None:
    """``text`` parses as reStructuredText without a warning (as ``sphinx -W`` needs)."""
    docutils_core = pytest.importorskip("docutils.core")
    docutils_core.publish_doctree(text, settings_overrides={"halt_level": 2, "report_level": 5})


def publish_fabricated(results: Path, work: Path, finals: dict[tuple[str, str], float]) -> None:
    """Two published seeds per (group, variant), final return ``final + 10 * seed``; what
    the recipe writes for ``drqv2`` and ``dreamerpro`` (no decoder): no reconstruction
    error, no reconstruction panel."""
    header = ",".join(INVOCATIONS_COLUMNS) + "\n"
    for (group, variant), final in finals.items():
        for seed in (0, 1):
            run_dir = finished_run(work / group / variant / f"seed{seed}", variant, seed, group)
            write(run_dir / "logs/scalars/eval/return.csv", f"0,10\n8000,{final + 10 * seed}\n")
            write(run_dir / "invocations.csv", header + "0,600,600.0,0,1,1,2,Some CPU\n")
            if variant in ("drqv2", "dreamerpro"):
                for pattern in ("logs/scalars/eval/recon_error_*", "figures/reconstruction_*"):
                    for path in run_dir.glob(pattern):
                        path.unlink()
            publish_run(run_dir, results / "cpu" / group / variant / f"seed{seed}")


def test_the_baselines_are_scored_and_left_out_of_the_error_table(tmp_path):
    # drqv2 and dreamerpro where the study runs them, beside dreamer (with errors)
    results = tmp_path / "results"
    finals = {
        ("reafferent", "dreamer"): 100,
        ("reafferent", "drqv2"): 150,
        ("reafferent", "dreamerpro"): 120,
        ("none", "drqv2"): 300,
        ("video", "dreamerpro"): 80,
    }
    publish_fabricated(results, tmp_path / "work", finals)
    summary = write_study_summary(STUDIES["cpu"], results)
    folder = results / "cpu"
    assert len(summary.runs) == 10
    # the score table keeps them: the last columns, in the study's order
    assert (folder / "scores.md").read_text().splitlines()[:5] == [
        "| task | dreamer | drqv2 | dreamerpro |",
        "|---|---:|---:|---:|",
        "| cartpole-swingup [reafferent] | 105.0 ± 7.1 | **155.0 ± 7.1** | 125.0 ± 7.1 |",
        "| cartpole-swingup [none] | – | **305.0 ± 7.1** | – |",
        "| cartpole-swingup [video] | – | – | **85.0 ± 7.1** |",
    ]
    scores = list(csv.DictReader(io.StringIO((folder / "scores.csv").read_text())))
    assert [(row["task"], row["drqv2_n"], row["dreamerpro_mean"]) for row in scores] == [
        ("cartpole-swingup [reafferent]", "2", "125"),
        ("cartpole-swingup [none]", "2", ""),
        ("cartpole-swingup [video]", "", "85"),
    ]
    # the error table leaves them out, says so, and keeps the score table's row
    # ("[reafferent]", although only that distractor logged errors)
    regions = (folder / "region_errors.md").read_text().splitlines()
    assert regions[2:] == [
        "| cartpole-swingup [reafferent] | dreamer | 4.00 ± 0.00 | 30.00 ± 0.00 | 2 |",
        "",
        "Table: World-model reconstruction MSE x 1000 (images on [0, 1]) inside the "
        "ground-truth task mask (agent) and outside it (background), first episode of the "
        "last evaluation of each seed; mean ± std across seeds (2 seeds per line). Left "
        "out, no error logged (no decoder, or no ground-truth mask): drqv2, dreamerpro.",
    ]
    errors = list(csv.DictReader(io.StringIO((folder / "region_errors.csv").read_text())))
    assert [(row["task"], row["variant"]) for row in errors] == [
        ("cartpole-swingup [reafferent]", "dreamer")
    ]
    assert (folder / "region_errors.png").is_file()
    # every run has its wall-clock line; only dreamer has a reconstruction panel
    wall_clock = list(csv.DictReader(io.StringIO((folder / "wall_clock.csv").read_text())))
    assert sorted({row["variant"] for row in wall_clock}) == ["dreamer", "dreamerpro", "drqv2"]
    assert len(wall_clock) == 10 and {row["wall_clock_min"] for row in wall_clock} == {"10.0"}
    fragment = (folder / "summary.inc").read_text()
    assert fragment.count(".. figure::") == 1
    assert ".. figure:: /results/cpu/reafferent/dreamer/seed0/figures/" in fragment
    assert_valid_rst(fragment)

    # only the baselines published: no error at all; the fragment says so in a sentence
    # (docutils refuses a list-table without a body row) and draws no error figure
    for seed in (0, 1):
        shutil.rmtree(folder / "reafferent" / "dreamer" / f"seed{seed}")
    summary = write_study_summary(STUDIES["cpu"], results)
    assert len(summary.runs) == 8
    assert (folder / "scores.md").read_text().startswith("| task | drqv2 | dreamerpro |")
    assert (folder / "region_errors.md").read_text() == (
        "No reconstruction error logged by drqv2, dreamerpro (no decoder, or no ground-truth "
        "mask).\n"
    )
    assert (folder / "region_errors.csv").read_text().count("\n") == 1  # the header
    assert not (folder / "region_errors.png").exists()
    fragment = (folder / "summary.inc").read_text()
    assert "No reconstruction error logged by drqv2, dreamerpro" in fragment
    assert "region_errors.png" not in fragment and ".. figure::" not in fragment
    assert_valid_rst(fragment)


def test_compare_needs_a_root_or_a_study(capsys):
    compare = load_compare()
    with pytest.raises(SystemExit):
        compare.parse_args(["--variants", "psp"])
    assert "give --root DIR (or --study NAME)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.parse_args(["--study", "cpu", "--tasks", "cheetah-run"])
    assert "has its own task" in capsys.readouterr().err
    assert compare.main(["--study", "nope", "--dry-run"]) == 2
    assert "Unknown study 'nope'" in capsys.readouterr().err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
