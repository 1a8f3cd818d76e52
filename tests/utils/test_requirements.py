"""torchrl_psp.utils.requirements: which of pyproject's run requirements are missing."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from torchrl_psp.utils.requirements import missing_requirements, run_requirements

REPO = Path(__file__).resolve().parents[2]
needs_tomllib = pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib: Python 3.11")

PYPROJECT = textwrap.dedent(
    """
    [project]
    name = "example"
    dependencies = [
        "pip",
        "no-such-distribution-a>=1,<2",
        "No_Such.Distribution-B ; python_version >= '3'",
    ]
    [project.optional-dependencies]
    test = ["no-such-test-extra"]
    """
)


@needs_tomllib
def test_the_names_come_from_dependencies_without_the_extras(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    names = run_requirements(tmp_path / "pyproject.toml")
    assert names == ["pip", "no-such-distribution-a", "No_Such.Distribution-B"]
    assert missing_requirements(tmp_path / "pyproject.toml") == names[1:]


def test_this_projects_requirements_are_installed_here():
    # The test environment is installed from pyproject.toml: nothing is missing, and
    # the list is the real one (torch and torchrl among it).
    assert {"torch", "torchrl", "hydra-core"} <= set(run_requirements(REPO / "pyproject.toml"))
    assert missing_requirements(REPO / "pyproject.toml") == []


def test_an_unreadable_pyproject_falls_back_to_the_installed_metadata(tmp_path):
    # The project is installed here (pip install -e .): its metadata has the same list.
    assert run_requirements(tmp_path / "absent.toml") == run_requirements(None)
    assert "torchrl" in run_requirements(None)
