"""The table of studies (torchrl_psp/study/studies.py): its expansion into runs, and that
every run of the CPU study is a configuration the recipe accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchrl_psp.study.studies import (
    STUDIES,
    Study,
    StudyGroup,
    merge_overrides,
    study_spec,
)
from torchrl_psp.study.study_runner import plan_study

CONFIG = Path(__file__).resolve().parents[2] / "recipes" / "config"


ISSUE_14 = {
    "reafferent": ("dreamer", "psp", "psp_noseg", "psp_noadv", "sd_gt"),
    "none": ("dreamer", "psp"),
    "video": ("dreamer", "psp", "sd_gt"),
}


def test_the_cpu_study_is_issue_14s_design_with_the_papers_baselines():
    study = study_spec("cpu")
    assert (study.task, study.preset, study.seeds) == ("cartpole-swingup", "cpu_study", (0, 1, 2))
    # issue 16: DrQ-v2 where PSP Table 1 has it (reafferent, unaltered), DreamerPro on the
    # reafferent task (PSP Table 1) and on video (SD); after issue 14's variants
    assert {g.name: (g.distractor, g.variants) for g in study.groups} == {
        "reafferent": ("reafferent", (*ISSUE_14["reafferent"], "drqv2", "dreamerpro")),
        "none": ("none", (*ISSUE_14["none"], "drqv2")),
        "video": ("video", (*ISSUE_14["video"], "dreamerpro")),
    }
    assert study.variants == (
        "dreamer",
        "psp",
        "psp_noseg",
        "psp_noadv",
        "sd_gt",
        "drqv2",
        "dreamerpro",
    )
    assert study.rows == (
        "cartpole-swingup [reafferent]",
        "cartpole-swingup [none]",
        "cartpole-swingup [video]",
    )
    runs = study.runs()
    assert len(runs) == 42 and len({run.name for run in runs}) == 42
    assert [run.name for run in runs[:4]] == [
        "reafferent/dreamer/seed0",
        "reafferent/dreamer/seed1",
        "reafferent/dreamer/seed2",
        "reafferent/psp/seed0",
    ]
    assert runs[-1].name == "video/dreamerpro/seed2"
    assert runs[-1].overrides == ("preset=cpu_study", "env.segmentation=gt", "env.distractor=video")
    assert runs[-1].results_dir("docs/results") == Path("docs/results/cpu/video/dreamerpro/seed2")
    # the runs of issue 14 (started before the baselines were added) keep their order and
    # settings: an unfinished one is resumed, not conflicting
    old = [run for run in runs if run.variant in ISSUE_14[run.group]]
    assert [run.name for run in old] == [
        f"{group}/{variant}/seed{seed}"
        for group, variants in ISSUE_14.items()
        for variant in variants
        for seed in (0, 1, 2)
    ]
    assert {run.overrides for run in old if run.group == "reafferent"} == {
        ("preset=cpu_study", "env.segmentation=gt", "env.distractor=reafferent")
    }
    baselines = study.runs(variants=["drqv2", "dreamerpro"], seeds=[0])
    assert [run.name for run in baselines] == [
        "reafferent/drqv2/seed0",
        "reafferent/dreamerpro/seed0",
        "none/drqv2/seed0",
        "video/dreamerpro/seed0",
    ]


def test_selecting_groups_variants_seeds_and_extra_overrides():
    study = STUDIES["cpu"]
    runs = study.runs(groups=["video", "none"], variants=["psp"], seeds=[4])
    assert [run.name for run in runs] == ["video/psp/seed4", "none/psp/seed4"]
    # extra overrides replace the study's own with the same key, and add the others
    (run,) = study.runs(["none"], ["dreamer"], [0], ["preset=smoke", "train.total_env_steps=300"])
    assert run.overrides == (
        "preset=smoke",
        "env.segmentation=gt",
        "env.distractor=none",
        "train.total_env_steps=300",
    )
    with pytest.raises(ValueError, match=r"no group 'noise'.*\['reafferent', 'none', 'video'\]"):
        study.runs(groups=["noise"])
    with pytest.raises(ValueError, match=r"no selected group runs \['psp_noseg'\]"):
        study.runs(groups=["video"], variants=["psp_noseg"])
    with pytest.raises(ValueError, match=r"Unknown study 'gpu'; expected one of \['cpu'\]"):
        study_spec("gpu")


def test_merge_overrides_keeps_the_last_value_of_a_key():
    merged = merge_overrides(["a=1", "+b.c=2", "d=3"], ["b.c=5"], ["a=7"])
    assert merged == ("a=7", "b.c=5", "d=3")


def test_a_malformed_study_is_refused_with_the_bad_value():
    group = StudyGroup("g", "video", ("dreamer",))
    with pytest.raises(ValueError, match=r"unknown variants \['plain'\]"):
        StudyGroup("g", "video", ("plain",))
    with pytest.raises(
        ValueError, match="distractor must be none, reafferent or video, got 'noise'"
    ):
        StudyGroup("g", "noise", ("dreamer",))
    with pytest.raises(ValueError, match="must differ"):
        Study("s", "", "cartpole-swingup", "cpu", (0,), (group, StudyGroup("h", "video", ("psp",))))
    with pytest.raises(ValueError, match="seeds must be distinct"):
        Study("s", "", "cartpole-swingup", "cpu", (0, 0), (group,))
    with pytest.raises(ValueError, match="<domain>-<task>"):
        Study("s", "", "cartpole", "cpu", (0,), (group,))


def _composed(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG), version_base="1.3"):
        return compose("config", overrides=overrides)


def test_every_run_of_the_cpu_study_is_a_valid_configuration(tmp_path):
    from torchrl_psp.baselines import drqv2_run_config
    from torchrl_psp.baselines.drqv2_trainer import validate_drqv2_config
    from torchrl_psp.training import updates_due, validate_config

    plan = plan_study(
        STUDIES["cpu"], tmp_path / "work", tmp_path / "results", recipe="r.py", python="python"
    )
    assert len(plan) == 42 and {p.status for p in plan} == {"new"}
    for planned in plan:
        overrides = [o for o in planned.spec.command[2:] if not o.startswith("hydra.")]
        cfg = _composed(overrides)
        if planned.run.variant == "drqv2":  # as the recipe does: DrQ-v2's replay and rate
            drqv2 = drqv2_run_config(cfg)
            validate_drqv2_config(drqv2)  # raises, listing every problem
        else:
            validate_config(cfg)  # raises, listing every problem
        assert cfg.variant == planned.run.variant and cfg.seed == planned.run.seed
        assert cfg.env.distractor == STUDIES["cpu"].group(planned.run.group).distractor
    # DrQ-v2 at the paper's batch of 256, not the cpu preset's 64 (docs/baselines.rst, "In
    # the CPU study"): one update per 2 agent steps after 4,000 seed frames, i.e. 500 agent
    # steps at action repeat 8
    replay, prefill = drqv2.replay, drqv2.collector.prefill_steps
    assert (replay.batch_size, replay.sequence_length, prefill) == (256, 5, 500)
    assert updates_due(112000 // 8, replay, prefill) == 6750
    # the exploration std falls over the paper's easy-task share of the run (100k of 550k
    # agent steps) of the study's 14,000: 2,500 agent steps, then stays at std_final
    from torchrl_psp.baselines import linear_std, std_schedule_steps

    steps = std_schedule_steps(drqv2)
    assert steps == 2500 and round(steps / (112000 // 8), 2) == round(100_000 / 550_000, 2)
    assert linear_std(1250, 1.0, 0.1, steps) == pytest.approx(0.55)
    assert linear_std(14000, 1.0, 0.1, steps) == pytest.approx(0.1)
    # the preset holds the settings of the CPU run that learned (docs/recipe.rst, "Measured")
    assert cfg.preset_name == "cpu_study"
    assert (cfg.env.domain, cfg.env.task, cfg.env.frame_skip, cfg.env.segmentation) == (
        "cartpole",
        "swingup",
        8,
        "gt",
    )
    assert (cfg.replay.batch_size, cfg.replay.sequence_length, cfg.replay.replay_ratio) == (
        16,
        16,
        128,
    )
    assert (cfg.optim.horizon, cfg.optim.actor_lr, cfg.optim.entropy_bonus) == (100, 1e-4, 3e-3)
    assert (cfg.optim.lr, cfg.model.size, cfg.collector.prefill_steps) == (3e-4, "small", 1000)
    assert (cfg.train.total_env_steps, cfg.eval.every_env_steps, cfg.eval.episodes) == (
        112000,
        8000,
        5,
    )
