"""Comparisons of variants across seeds and tasks, gathered under one name.

``recipes/compare.py`` is the command line; the logic lives in modules with one job each,
whose public names this module re-exports:

* :mod:`~torchrl_psp.training.runs` -- reading run directories: :func:`find_runs`,
  :func:`read_run` (a :class:`RunRecord`), :func:`read_curve`, and the layout
  :func:`run_dir_for`.
* :mod:`~torchrl_psp.training.scores` -- PSP Table 1 / SD Table 1: :func:`score_table`
  (a :class:`ScoreTable` of :class:`Cell`, written as Markdown, LaTeX or CSV) and
  :func:`curves_by_row`.
* :mod:`~torchrl_psp.training.summary` -- :func:`learning_curves_grid` (PSP Figs. 3 and
  6) and :func:`write_summary`, which writes the table and the curves.
* :mod:`~torchrl_psp.training.launcher` -- :func:`plan_runs` (new, resumed, done or
  conflicting runs) and :func:`run_all`, a few at a time.
"""

from torchrl_psp.training.launcher import (
    LOG_FILE,
    RunSpec,
    plan_runs,
    run_all,
    run_status,
    split_task,
)
from torchrl_psp.training.runs import (
    CONFIG_FILE,
    DONE_MARKER,
    EVAL_RETURN_CSV,
    RunRecord,
    find_runs,
    read_curve,
    read_run,
    run_dir_for,
)
from torchrl_psp.training.scores import (
    VARIANT_ORDER,
    Cell,
    ScoreTable,
    curves_by_row,
    score_table,
)
from torchrl_psp.training.summary import Summary, learning_curves_grid, write_summary

__all__ = [
    "CONFIG_FILE",
    "DONE_MARKER",
    "EVAL_RETURN_CSV",
    "LOG_FILE",
    "VARIANT_ORDER",
    "Cell",
    "RunRecord",
    "RunSpec",
    "ScoreTable",
    "Summary",
    "curves_by_row",
    "find_runs",
    "learning_curves_grid",
    "plan_runs",
    "read_curve",
    "read_run",
    "run_all",
    "run_dir_for",
    "run_status",
    "score_table",
    "split_task",
    "write_summary",
]
