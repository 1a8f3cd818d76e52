"""Running a study of :data:`~torchrl_psp.study.studies.STUDIES`: plan, run, publish.

:func:`plan_study` expands a :class:`~torchrl_psp.study.studies.Study` into one
:class:`~torchrl_psp.study.launcher.RunSpec` per run, laid out under
``<root>/<group>/<task>/<variant>/seed<seed>`` (the work folder: replay, checkpoints),
with the status of :func:`~torchrl_psp.study.launcher.plan_runs`, or ``"published"`` when
its results are already kept in ``<results>/<study>/<group>/<variant>/seed<seed>``
(:func:`~torchrl_psp.study.results.is_published`): such a run is not run again, on this
machine or another. :func:`run_study` publishes every finished run
(:func:`~torchrl_psp.study.results.publish_run`), runs the others and publishes each one
as it finishes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from torchrl_psp.study.launcher import RunSpec, plan_runs, run_all
from torchrl_psp.study.results import is_published, publish_run
from torchrl_psp.study.studies import Study, StudyRun

__all__ = ["PlannedRun", "plan_study", "publish_finished", "run_study"]


@dataclass
class PlannedRun:
    """One run of a study: the run, its command and status (``spec``) and where its results
    are published."""

    run: StudyRun
    spec: RunSpec
    results_dir: Path

    @property
    def status(self) -> str:
        """``"published"``, or the status of :func:`~torchrl_psp.study.launcher.plan_runs`:
        ``"new"``, ``"resume"``, ``"done"`` (finished, not yet published) or ``"conflict"``."""
        return self.spec.status


def plan_study(
    study: Study,
    root: str | Path,
    results_root: str | Path,
    *,
    groups: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    extra_overrides: Sequence[str] = (),
    recipe: str | Path,
    python: str = sys.executable,
) -> list[PlannedRun]:
    """The runs of ``study`` (:meth:`~torchrl_psp.study.studies.Study.runs` selects them),
    each planned by :func:`~torchrl_psp.study.launcher.plan_runs` in ``<root>/<group>``.

    Examples:
        >>> import tempfile
        >>> from torchrl_psp.study.studies import STUDIES
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     plan = plan_study(STUDIES["cpu"], Path(folder) / "work", Path(folder) / "results",
        ...                       groups=["none"], seeds=[0], recipe="dreamer_psp.py",
        ...                       python="python")
        >>> [(p.spec.name, p.status) for p in plan][:2]
        [('none/cartpole-swingup/dreamer/seed0', 'new'), ('none/cartpole-swingup/psp/seed0', 'new')]
        >>> [p.run.variant for p in plan]
        ['dreamer', 'psp', 'drqv2']
        >>> " ".join(plan[1].spec.command[2:9])
        'variant=psp seed=0 env.domain=cartpole env.task=swingup preset=cpu_study env.segmentation=gt env.distractor=none'
        >>> plan[1].results_dir.relative_to(Path(folder)).as_posix()
        'results/cpu/none/psp/seed0'
    """
    planned = []
    for run in study.runs(groups, variants, seeds, extra_overrides):
        (spec,) = plan_runs(
            Path(root) / run.group,
            [run.task],
            [run.variant],
            [run.seed],
            run.overrides,
            recipe=recipe,
            python=python,
        )
        spec = replace(spec, group=run.group)
        results_dir = run.results_dir(results_root)
        if is_published(results_dir):
            spec = replace(spec, status="published")
        planned.append(PlannedRun(run, spec, results_dir))
    return planned


def publish_finished(
    plan: Sequence[PlannedRun], *, echo: Callable[[str], None] = print
) -> list[PlannedRun]:
    """Publishes every run of ``plan`` that has finished (status ``"done"``) and marks it
    ``"published"``; returns those runs."""
    published = []
    for planned in plan:
        if planned.status == "done":
            publish_run(planned.spec.run_dir, planned.results_dir)
            planned.spec = replace(planned.spec, status="published")
            echo(f"[published] {planned.run.name} -> {planned.results_dir}")
            published.append(planned)
    return published


def run_study(
    plan: Sequence[PlannedRun],
    processes: int = 1,
    *,
    echo: Callable[[str], None] = print,
    poll_interval: float = 0.5,
) -> dict[str, int]:
    """Publishes the finished runs of ``plan``, runs the new and unfinished ones
    (:func:`~torchrl_psp.study.launcher.run_all`, ``processes`` at a time) and publishes
    each as it finishes; published and conflicting runs are not run.

    Returns:
        ``RunSpec.name -> return code`` of every run started (0: finished and published;
        a run whose results could not be copied counts as failed, code ``-998``).
    """
    publish_finished(plan, echo=echo)
    by_name = {planned.spec.name: planned for planned in plan}
    unpublished: list[str] = []

    def publish(spec: RunSpec, code: int) -> None:
        if code != 0:
            return
        planned = by_name[spec.name]
        try:
            publish_run(spec.run_dir, planned.results_dir)
        except (OSError, ValueError) as error:
            echo(f"[publish FAILED] {planned.run.name}: {error}")
            unpublished.append(spec.name)
            return
        planned.spec = replace(planned.spec, status="published")
        echo(f"[published] {planned.run.name} -> {planned.results_dir}")

    results = run_all(
        [planned.spec for planned in plan],
        processes,
        echo=echo,
        poll_interval=poll_interval,
        on_finish=publish,
    )
    for name in unpublished:
        results[name] = -998
    return results
