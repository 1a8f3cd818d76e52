"""``figures`` and ``comparison`` still offer every public name, now defined elsewhere."""

from __future__ import annotations

import importlib

import pytest

FIGURES = {
    "panels": ["DIFF_CMAP", "MASK_CMAP", "TITLE_HEIGHT", "WEIGHT_CMAP"]
    + ["reconstruction_panel", "sd_mask_panel"],
    "curves": ["CurveStats", "aggregate_seeds", "learning_curve_figure"]
    + ["plot_learning_curves", "save_figure"],
    "video": ["write_video"],
}
COMPARISON = {
    "runs": ["CONFIG_FILE", "DONE_MARKER", "EVAL_RETURN_CSV", "RunRecord"]
    + ["find_runs", "read_curve", "read_run", "run_dir_for"],
    "scores": ["VARIANT_ORDER", "Cell", "ScoreTable", "curves_by_row", "score_table"],
    "summary": ["Summary", "learning_curves_grid", "write_summary"],
    "launcher": ["LOG_FILE", "RunSpec", "plan_runs", "run_all", "run_status", "split_task"],
}


@pytest.mark.parametrize(("name", "homes"), [("figures", FIGURES), ("comparison", COMPARISON)])
def test_old_module_re_exports_the_new_modules(name, homes):
    module = importlib.import_module(f"torchrl_psp.training.{name}")
    assert set(module.__all__) == {n for names in homes.values() for n in names}
    for home, names in homes.items():
        new = importlib.import_module(f"torchrl_psp.training.{home}")
        for public in names:
            assert public in new.__all__, (home, public)
            assert getattr(module, public) is getattr(new, public), (name, public)
