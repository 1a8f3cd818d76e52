"""The GPU suite (benchmarks/gpu/) before any GPU is lent: its CPU dry run, as the device
command runs it, and its parts (the recipe plan, the step timeouts, the wheels)."""

from __future__ import annotations

import doctest
import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "benchmarks" / "gpu"


def load(path: Path, name: str):
    """Imports a benchmark script (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


suite = load(GPU / "suite.py", "gpu_suite")
wheels = load(GPU / "wheels.py", "gpu_wheels")


def test_dry_run_of_the_device_command_runs_every_step(tmp_path):
    """The device command (suite.sh) with --dry-run: steps a-d on the CPU at tiny sizes,
    every table written to the output folder within what the device returns."""
    out, work = tmp_path / "out", tmp_path / "work"
    result = subprocess.run(
        [str(GPU / "suite.sh"), str(out), "--dry-run", "--work", str(work)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("a ", "b ", "c_eager ", "c_compiled ", "d "):
        assert f"{step.strip():10s} ok" in result.stdout, result.stdout
    summary = (out / "summary.md").read_text()
    for heading in ("## a. Environment", "## b. SAM", "## c. Learner", "## d. Recipe"):
        assert heading in summary
    assert "package torchrl" in summary and "render: mean pixel" in summary
    assert "SAMSegmentation vit_b" in summary and "PerSAMSegmentation vit_b" in summary
    for variant in ("DreamerV3", "PSP", "SD (GT mask)"):
        assert f"learner update, {variant}" in summary
    assert "full PSP" in summary
    report = (out / "d_recipe.txt").read_text()
    assert "finished (done file): True" in report
    assert re.search(r"checkpoint\.pt: [0-9.]+ MiB, counters", report)
    assert "reconstruction_" in report and "learning_curve.png" in report
    assert re.search(r"[0-9.]+ updates/s, [0-9.]+ env steps/s", report)
    assert (out / "d_figure.png").stat().st_size > 0
    # what comes back from the device: at most 8 files, plain names, no sub-folders
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files), files
    assert all((out / f).is_file() for f in files)


def test_doctests_of_the_suite_and_wheels_modules():
    for module in (suite, wheels):
        failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failures == 0, module.__name__


@pytest.mark.parametrize("update_s", [0.02, 0.3, 2.0, None])
def test_recipe_plan_fits_its_time_and_the_recipe_settings(update_s):
    size = suite.GPU.recipe
    plan = suite.plan_recipe(size, 150.0, update_s)
    unit = size.frames_per_batch * size.frame_skip
    assert plan["total_env_steps"] % unit == 0 and plan["eval_every_env_steps"] % unit == 0
    assert size.prefill * size.frame_skip < plan["total_env_steps"]
    assert plan["eval_every_env_steps"] < plan["total_env_steps"]  # a mid-run evaluation
    # the estimate the plan was made from: within the time (or the minimum run)
    agent_steps = plan["total_env_steps"] // size.frame_skip - size.prefill
    assert plan["expected_updates"] == agent_steps * size.replay_ratio // (size.batch * size.seq)
    per_update = update_s if update_s is not None else size.fallback_update_s
    estimate = (
        size.startup_s
        + (size.prefill + 2 * size.eval_max_steps + agent_steps) * size.env_step_s
        + plan["expected_updates"] * per_update
    )
    assert estimate <= 150.0 + (2 * size.frames_per_batch) * (size.env_step_s + per_update)
    command = suite.recipe_command(size, plan, Path("/tmp/run"))
    assert "preset=paper" in command and "variant=psp" in command
    assert "env.segmentation=gt" in command and "logger.wandb=disabled" in command


@pytest.mark.parametrize(
    "kwargs, message",
    [({"duration_s": 0.0}, "duration_s"), ({"duration_s": 10.0, "update_s": -1.0}, "update_s")],
)
def test_recipe_plan_rejects_bad_arguments(kwargs, message):
    kwargs.setdefault("update_s", None)
    with pytest.raises(ValueError, match=message):
        suite.plan_recipe(suite.GPU.recipe, **kwargs)


def test_a_step_past_its_timeout_is_interrupted_and_keeps_its_output(tmp_path):
    command = [sys.executable, "-c", "print('row 1', flush=True); import time; time.sleep(60)"]
    result = suite.run_step("x", command, tmp_path / "x.txt", 2.0, {}, tmp_path)
    assert result.timed_out and "TIMED OUT" in result.status
    assert "row 1" in result.stdout and "KeyboardInterrupt" in result.stderr_tail
    with pytest.raises(ValueError, match="no time left"):
        suite.run_step("x", command, tmp_path / "y.txt", 0.0, {}, tmp_path)
    with pytest.raises(ValueError, match="unknown steps"):
        suite.run_suite(tmp_path / "o", tmp_path / "w", suite.DRY, ["e"])


def test_update_cost_builds_compiled_and_graphed_steppers(monkeypatch, capsys):
    """The compiled rows ask the stepper for compile/CUDA graphs and warm it up first
    (run eagerly here: compiling takes minutes on a CPU, graphs need CUDA)."""
    update_cost = load(ROOT / "benchmarks" / "update_cost.py", "update_cost_bench")
    asked, warmed = [], []
    real = update_cost.make_optimization_stepper

    def eager_stepper(loss, **kwargs):
        asked.append({k: kwargs[k] for k in ("compile_train_step", "cudagraph")})
        stepper = real(loss, **{**kwargs, "compile_train_step": False, "cudagraph": False})
        stepper.warmup = lambda sample: warmed.append(sample.batch_size)
        return stepper

    monkeypatch.setattr(update_cost, "make_optimization_stepper", eager_stepper)
    common = ["--device", "cpu", "--preset", "tiny", "--batch", "1", "--seq", "2"]
    common += ["--rounds", "1", "--no-world-model", "--threads", "1"]
    result = update_cost.main(
        [*common, "--learner-variants", "dreamer", "psp", "--modes", "compile"]
    )
    assert asked == [{"compile_train_step": True, "cudagraph": False}] * 2 and len(warmed) == 2
    names = [row["name"] for row in result["rows"]]
    assert names == ["learner update, DreamerV3 [compile]", "learner update, PSP [compile]"]
    assert "learner update, PSP [compile]" in capsys.readouterr().out

    # a row that fails to compile is reported, and the next row still runs
    def failing_stepper(loss, **kwargs):
        if type(loss.model_loss).__name__ == "PSPModelLoss":
            raise RuntimeError("capture failed\nwith details")
        return eager_stepper(loss, **kwargs)

    monkeypatch.setattr(update_cost, "make_optimization_stepper", failing_stepper)
    result = update_cost.main(
        [*common, "--learner-variants", "psp", "dreamer", "--modes", "compile"]
    )
    assert result["rows"][0]["error"] == "RuntimeError: capture failed"
    assert result["rows"][1]["name"] == "learner update, DreamerV3 [compile]"
    assert "learner update, PSP [compile]                    FAILED" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # CUDA graphs on a CPU: a clear command-line error
        update_cost.main([*common, "--modes", "compile+cudagraph"])
    assert "needs a CUDA device" in capsys.readouterr().err
    assert update_cost.learner_row_name("dreamer", "compile+cudagraph").endswith(
        "[compile+cudagraph]"
    )
    with pytest.raises(ValueError, match="unknown mode"):
        update_cost.learner_row_name("dreamer", "jit")


def test_carried_wheels_match_the_project_pins():
    """One version of each, inside pyproject's ranges, for the suite's imports."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pins = {}
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        pins[requirement.name.lower()] = requirement.specifier
    names = [w.name.lower() for w in wheels.WHEELS]
    assert len(names) == len(set(names))
    for wheel in wheels.WHEELS:
        if wheel.name.lower() in pins:
            assert wheel.version in pins[wheel.name.lower()], wheel
    for needed in ("torchrl", "tensordict", "mujoco", "dm-control", "segment-anything"):
        assert needed in names
    assert {"hydra-core", "omegaconf", "antlr4-python3-runtime"} <= set(names)
    assert "wandb" not in names  # the suite runs the recipe with logger.wandb=disabled


def test_slim_wheel_keeps_a_valid_record(tmp_path):
    source = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(source, "w") as z:
        z.writestr("pkg/__init__.py", "x = 1\n")
        z.writestr("pkg/assets/big.bin", b"\0" * 1000)
        z.writestr("pkg-1.0.dist-info/METADATA", "Name: pkg\nVersion: 1.0\n")
        z.writestr("pkg-1.0.dist-info/RECORD", "")
    result = wheels.slim_wheel(source, tmp_path / "out" / source.name, ("pkg/assets/*",))
    assert result.dropped == ["pkg/assets/big.bin"]
    with zipfile.ZipFile(result.path) as z:
        record = z.read("pkg-1.0.dist-info/RECORD").decode().splitlines()
    listed = {line.split(",")[0] for line in record}
    assert listed == {"pkg/__init__.py", "pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/RECORD"}
    assert all(line.split(",")[1].startswith("sha256=") for line in record[:-1])
    with pytest.raises(ValueError, match="is the source"):
        wheels.slim_wheel(source, source, ())
