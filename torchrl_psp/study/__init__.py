"""Studies: many runs of ``recipes/dreamer_psp.py`` and the papers' tables and curves.

``recipes/compare.py`` is the command line; the logic lives in four modules:

* :mod:`~torchrl_psp.study.runs` -- reading run directories: :func:`find_runs`,
  :func:`read_run` (a :class:`RunRecord`), :func:`read_curve`, and the layout
  :func:`run_dir_for`.
* :mod:`~torchrl_psp.study.scores` -- PSP Table 1 / SD Table 1: :func:`score_table`
  (a :class:`ScoreTable` of :class:`Cell`, written as Markdown, LaTeX or CSV) and
  :func:`curves_by_row`.
* :mod:`~torchrl_psp.study.summary` -- :func:`learning_curves_grid` (PSP Figs. 3 and 6)
  and :func:`write_summary`, which writes the table and the curves.
* :mod:`~torchrl_psp.study.launcher` -- :func:`plan_runs` (new, resumed, done or
  conflicting runs) and :func:`run_all`, a few at a time, each in its own process.

Importing the package imports neither torch nor TorchRL: a study reads and starts runs,
it does not train (the one training setting it reads,
:data:`~torchrl_psp.training.config.RESUMABLE`, comes from a module without torch).
"""

from torchrl_psp.study.launcher import (
    LOG_FILE,
    RunSpec,
    plan_runs,
    run_all,
    run_status,
    split_task,
)
from torchrl_psp.study.runs import (
    CONFIG_FILE,
    DONE_MARKER,
    EVAL_RETURN_CSV,
    RunRecord,
    config_value,
    find_runs,
    load_yaml,
    read_curve,
    read_run,
    run_dir_for,
)
from torchrl_psp.study.scores import (
    VARIANT_ORDER,
    Cell,
    ScoreTable,
    curves_by_row,
    score_table,
)
from torchrl_psp.study.summary import Summary, learning_curves_grid, write_summary

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
    "config_value",
    "curves_by_row",
    "find_runs",
    "learning_curves_grid",
    "load_yaml",
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
