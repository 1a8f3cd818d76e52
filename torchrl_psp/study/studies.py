"""The project's studies in one table: which runs each one makes, and with what settings.

A :class:`Study` is one task, its seeds, a Hydra preset (the training settings, in
``recipes/config/preset/<preset>.yaml``) and :class:`StudyGroup` entries, one per
distractor, each with its variants. :meth:`Study.runs` expands it into one
:class:`StudyRun` per (group, variant, seed); ``recipes/compare.py --study <name>`` runs
them (:mod:`~torchrl_psp.study.study_runner`). A new study is one entry of
:data:`STUDIES`.

This module imports nothing heavy (no torch): ``recipes/compare.py`` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torchrl_psp.study.launcher import split_task
from torchrl_psp.training.config import override_key
from torchrl_psp.variants import VARIANT_SPECS

__all__ = [
    "STUDIES",
    "Study",
    "StudyGroup",
    "StudyRun",
    "merge_overrides",
    "study_spec",
]


def merge_overrides(*groups: Iterable[str]) -> tuple[str, ...]:
    """Hydra overrides of several sources, the later ones replacing earlier ones that set
    the same key (:func:`~torchrl_psp.training.config.override_key`); first-seen order.

    Examples:
        >>> merge_overrides(["preset=cpu_study", "env.segmentation=gt"], ["preset=smoke"])
        ('preset=smoke', 'env.segmentation=gt')
    """
    merged: dict[str, str] = {}
    for overrides in groups:
        for override in overrides:
            merged[override_key(override)] = override
    return tuple(merged.values())


@dataclass(frozen=True)
class StudyGroup:
    """The variants of a study run on one distractor (one row of the score table).

    Attributes:
        name: the group's name (``--groups`` of ``recipes/compare.py``, a folder name).
        distractor: ``env.distractor`` of its runs: ``none``, ``reafferent`` or ``video``.
        variants: the variants run (names of :data:`~torchrl_psp.variants.VARIANT_SPECS`).
        description: one line for the docs.
        overrides: Hydra overrides of this group's runs, beyond ``env.distractor``.
    """

    name: str
    distractor: str
    variants: tuple[str, ...]
    description: str = ""
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"a group name is a non-empty folder name, got {self.name!r}.")
        if self.distractor not in ("none", "reafferent", "video"):
            raise ValueError(
                f"group {self.name}: distractor must be none, reafferent or video, got "
                f"{self.distractor!r}."
            )
        unknown = [v for v in self.variants if v not in VARIANT_SPECS]
        if unknown or not self.variants:
            raise ValueError(
                f"group {self.name}: unknown variants {unknown or '(none given)'}; expected "
                f"some of {sorted(VARIANT_SPECS)}."
            )
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"group {self.name}: a variant is listed twice: {self.variants}.")

    @property
    def all_overrides(self) -> tuple[str, ...]:
        """``env.distractor=<distractor>``, then :attr:`overrides`."""
        return merge_overrides([f"env.distractor={self.distractor}"], self.overrides)


@dataclass(frozen=True)
class StudyRun:
    """One run of a study: what :func:`~torchrl_psp.study.launcher.plan_runs` needs, and
    where its results go.

    ``overrides`` are every Hydra override of the run except the variant, the seed and the
    task (which ``plan_runs`` adds): the study's preset and shared overrides, the group's,
    then the command line's, later ones replacing earlier ones with the same key.
    """

    study: str
    group: str
    task: str
    variant: str
    seed: int
    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        """``"<group>/<variant>/seed<seed>"``."""
        return f"{self.group}/{self.variant}/seed{self.seed}"

    def results_dir(self, results_root: str | Path) -> Path:
        """``<results_root>/<study>/<group>/<variant>/seed<seed>``: its published results."""
        return Path(results_root) / self.study / self.group / self.variant / f"seed{self.seed}"


@dataclass(frozen=True)
class Study:
    """A set of runs: one task and its seeds, a preset, and one group per distractor.

    Attributes:
        name: ``--study`` of ``recipes/compare.py``.
        description: one line for the docs.
        task: ``"<domain>-<task>"``.
        preset: the Hydra preset of every run (``preset=<preset>``).
        seeds: the seeds of every (group, variant).
        groups: the :class:`StudyGroup` entries, in the row order of the tables; their
            distractors differ (a row of the tables is a task and a distractor).
        overrides: Hydra overrides shared by every run, after the preset.
    """

    name: str
    description: str
    task: str
    preset: str
    seeds: tuple[int, ...]
    groups: tuple[StudyGroup, ...]
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        split_task(self.task)  # raises on a malformed task name
        if not self.groups:
            raise ValueError(f"study {self.name}: no group.")
        names = [g.name for g in self.groups]
        distractors = [g.distractor for g in self.groups]
        if len(set(names)) != len(names) or len(set(distractors)) != len(distractors):
            raise ValueError(
                f"study {self.name}: group names and distractors must differ, got "
                f"{list(zip(names, distractors))}."
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"study {self.name}: seeds must be distinct, got {self.seeds}.")

    def group(self, name: str) -> StudyGroup:
        """The group called ``name``.

        Raises:
            ValueError: an unknown name; the message lists the study's groups.
        """
        for group in self.groups:
            if group.name == name:
                return group
        raise ValueError(
            f"study {self.name} has no group {name!r}; its groups: {[g.name for g in self.groups]}."
        )

    @property
    def variants(self) -> tuple[str, ...]:
        """Every variant of the study, in the column order of the tables."""
        found = {v for g in self.groups for v in g.variants}
        return tuple(v for v in VARIANT_SPECS if v in found)

    @property
    def rows(self) -> tuple[str, ...]:
        """The rows of the tables, in the groups' order: ``"<task> [<distractor>]"``."""
        return tuple(f"{self.task} [{g.distractor}]" for g in self.groups)

    @property
    def shared_overrides(self) -> tuple[str, ...]:
        """``preset=<preset>``, then :attr:`overrides`."""
        return merge_overrides([f"preset={self.preset}"], self.overrides)

    def runs(
        self,
        groups: Sequence[str] | None = None,
        variants: Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
        extra_overrides: Sequence[str] = (),
    ) -> list[StudyRun]:
        """One :class:`StudyRun` per (group, variant, seed), in that nesting order.

        ``groups``, ``variants`` and ``seeds`` select (default: all of the study; a variant
        is run in the selected groups that list it); ``extra_overrides`` go to every run,
        replacing the study's own where they set the same key (e.g. ``preset=smoke``).

        Raises:
            ValueError: an unknown group, or a variant that no selected group runs.

        Examples:
            >>> runs = STUDIES["cpu"].runs(groups=["video"], seeds=[0])
            >>> [run.name.split("/")[1] for run in runs]
            ['dreamer', 'psp', 'sd_gt', 'dreamerpro']
            >>> runs[0].name
            'video/dreamer/seed0'
            >>> runs[1].overrides
            ('preset=cpu_study', 'env.segmentation=gt', 'env.distractor=video')
        """
        chosen = [self.group(name) for name in groups] if groups else list(self.groups)
        offered = {v for g in chosen for v in g.variants}
        missing = [v for v in variants or () if v not in offered]
        if missing:
            raise ValueError(
                f"study {self.name}: no selected group runs {missing}; the groups "
                f"{[g.name for g in chosen]} run {sorted(offered)}."
            )
        seeds = self.seeds if seeds is None else tuple(int(s) for s in seeds)
        runs = []
        for group in chosen:
            overrides = merge_overrides(self.shared_overrides, group.all_overrides, extra_overrides)
            for variant in group.variants:
                if variants and variant not in variants:
                    continue
                for seed in seeds:
                    runs.append(
                        StudyRun(self.name, group.name, self.task, variant, seed, overrides)
                    )
        return runs


#: Every study. ``cpu``: issue 14's CPU-scale study, cartpole-swingup at action repeat 8
#: with the settings of the CPU run that learned (``recipes/config/preset/cpu_study.yaml``;
#: docs/results.rst). ``env.segmentation=gt`` for every run: PSP reads the segments,
#: ``sd_gt`` the task mask, and the agent / background errors need the mask. The papers'
#: baselines are the last columns (issue 16), where the papers report them: ``drqv2``
#: (model-free) on the reafferent and the unaltered task, as PSP Table 1 has it;
#: ``dreamerpro`` (reconstruction-free) on the reafferent task (PSP Table 1) and on video
#: backgrounds (SD's comparison, whose strongest baseline it is), not undistracted, where
#: a run costs about 1.6 times DreamerV3's updates (docs/dreamerpro.rst, "Measured") for
#: no question about distraction. Neither has a decoder, so neither logs the agent /
#: background errors; both render the segments they do not read, as every run of the
#: study does (the same environment in every column).
STUDIES: dict[str, Study] = {
    study.name: study
    for study in (
        Study(
            name="cpu",
            description="CPU-scale comparison on cartpole-swingup, action repeat 8",
            task="cartpole-swingup",
            preset="cpu_study",
            seeds=(0, 1, 2),
            overrides=("env.segmentation=gt",),
            groups=(
                StudyGroup(
                    "reafferent",
                    "reafferent",
                    ("dreamer", "psp", "psp_noseg", "psp_noadv", "sd_gt", "drqv2", "dreamerpro"),
                    "the reafferent background (PSP Sec. 3.2): PSP, its ablations, SD_GT, and "
                    "PSP Table 1's baselines DrQ-v2 and DreamerPro",
                ),
                StudyGroup(
                    "none",
                    "none",
                    ("dreamer", "psp", "drqv2"),
                    "undistracted: what PSP costs where nothing distracts; DrQ-v2 as in PSP "
                    "Table 1's unaltered task",
                ),
                StudyGroup(
                    "video",
                    "video",
                    ("dreamer", "psp", "sd_gt", "dreamerpro"),
                    "the built-in procedural video background (PSP Sec. 3.1, SD Sec. 3); "
                    "DreamerPro, SD's strongest baseline",
                ),
            ),
        ),
    )
}


def study_spec(name: str) -> Study:
    """The study called ``name``.

    Raises:
        ValueError: an unknown name; the message lists the known ones.

    Examples:
        >>> study = study_spec("cpu")
        >>> study.task, study.preset, study.seeds, [g.name for g in study.groups]
        ('cartpole-swingup', 'cpu_study', (0, 1, 2), ['reafferent', 'none', 'video'])
        >>> len(study.runs())  # (7 + 3 + 4) variants x 3 seeds
        42
        >>> study.variants[-2:]  # the papers' baselines: the last columns
        ('drqv2', 'dreamerpro')
    """
    try:
        return STUDIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown study {name!r}; expected one of {sorted(STUDIES)}.") from None
