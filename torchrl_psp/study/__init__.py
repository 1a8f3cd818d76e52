"""Studies: many runs of ``recipes/dreamer_psp.py`` and the papers' tables and curves.

``recipes/compare.py`` is the command line; the logic lives in these modules:

* :mod:`~torchrl_psp.study.runs` -- reading run directories: :func:`find_runs`,
  :func:`read_run` (a :class:`RunRecord`), :func:`read_curve`, and the layout
  :func:`run_dir_for`.
* :mod:`~torchrl_psp.study.scores` -- PSP Table 1 / SD Table 1: :func:`score_table`
  (a :class:`ScoreTable` of :class:`Cell`, written as Markdown, LaTeX, reST or CSV) and
  :func:`curves_by_row`.
* :mod:`~torchrl_psp.study.summary` -- :func:`learning_curves_grid` (PSP Figs. 3 and 6)
  and :func:`write_summary`, which writes the table and the curves.
* :mod:`~torchrl_psp.study.launcher` -- :func:`plan_runs` (new, resumed, done or
  conflicting runs) and :func:`run_all`, a few at a time, each in its own process.
* :mod:`~torchrl_psp.study.studies` -- the table of studies, :data:`STUDIES`
  (:class:`Study`, :class:`StudyGroup`, expanded into :class:`StudyRun` entries).
* :mod:`~torchrl_psp.study.study_runner` -- :func:`plan_study` and :func:`run_study`:
  a study's runs, skipping those already published.
* :mod:`~torchrl_psp.study.results` -- :func:`publish_run`: the small results of a
  finished run, kept in ``docs/results/<study>/``; :func:`is_published`.
* :mod:`~torchrl_psp.study.regions` -- the agent / background reconstruction errors:
  :func:`region_error_table`, :func:`region_error_curves`.
* :mod:`~torchrl_psp.study.report` -- :func:`write_study_summary`: every table and
  figure of a study from its published results, and the results page's fragment.

Importing the package imports neither torch nor TorchRL: a study reads and starts runs,
it does not train (the one training setting it reads,
:data:`~torchrl_psp.training.config.RESUMABLE`, comes from a module without torch).
"""

from torchrl_psp.study.launcher import (
    INVOCATIONS_COLUMNS,
    INVOCATIONS_FILE,
    LOG_FILE,
    RunSpec,
    plan_runs,
    run_all,
    run_status,
    split_task,
)
from torchrl_psp.study.regions import (
    REGIONS,
    RegionErrorTable,
    read_region_errors,
    region_error_curves,
    region_error_table,
)
from torchrl_psp.study.report import StudySummary, wall_clock_table, write_study_summary
from torchrl_psp.study.results import is_published, publish_run
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
    ordered_rows,
    row_labels,
    score_table,
    variant_key,
)
from torchrl_psp.study.studies import STUDIES, Study, StudyGroup, StudyRun, study_spec
from torchrl_psp.study.study_runner import PlannedRun, plan_study, publish_finished, run_study
from torchrl_psp.study.summary import Summary, learning_curves_grid, write_summary

__all__ = [
    "CONFIG_FILE",
    "DONE_MARKER",
    "EVAL_RETURN_CSV",
    "INVOCATIONS_COLUMNS",
    "INVOCATIONS_FILE",
    "LOG_FILE",
    "REGIONS",
    "STUDIES",
    "VARIANT_ORDER",
    "Cell",
    "PlannedRun",
    "RegionErrorTable",
    "RunRecord",
    "RunSpec",
    "ScoreTable",
    "Study",
    "StudyGroup",
    "StudyRun",
    "StudySummary",
    "Summary",
    "config_value",
    "curves_by_row",
    "find_runs",
    "is_published",
    "learning_curves_grid",
    "load_yaml",
    "ordered_rows",
    "plan_runs",
    "plan_study",
    "publish_finished",
    "publish_run",
    "read_curve",
    "read_region_errors",
    "read_run",
    "region_error_curves",
    "region_error_table",
    "row_labels",
    "run_all",
    "run_dir_for",
    "run_status",
    "run_study",
    "score_table",
    "split_task",
    "study_spec",
    "variant_key",
    "wall_clock_table",
    "write_study_summary",
    "write_summary",
]
