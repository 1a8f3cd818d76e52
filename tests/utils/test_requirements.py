"""torchrl_psp.utils.requirements: which of pyproject's run requirements are missing."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from torchrl_psp.utils.requirements import (
    dependencies_from_toml_text,
    missing_requirements,
    run_requirements,
)

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


def test_without_tomllib_the_same_names_come_from_pyproject(tmp_path, monkeypatch):
    # Python 3.10 has no tomllib: the fallback reader gives the same answer, not the
    # installed metadata's.
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib -> ImportError
    assert run_requirements(tmp_path / "pyproject.toml") == [
        "pip",
        "no-such-distribution-a",
        "No_Such.Distribution-B",
    ]
    assert missing_requirements(tmp_path / "pyproject.toml") == [
        "no-such-distribution-a",
        "No_Such.Distribution-B",
    ]


@needs_tomllib
@pytest.mark.parametrize("text", [PYPROJECT, (REPO / "pyproject.toml").read_text()])
def test_the_fallback_reader_agrees_with_tomllib(text):
    import tomllib

    assert dependencies_from_toml_text(text) == tomllib.loads(text)["project"]["dependencies"]


@pytest.mark.parametrize(
    "text",
    [
        '[tool.x]\ndependencies = ["a"]\n',  # no [project] table
        '[project]\nname = "x"\n',  # no dependencies
        '[project]\ndependencies = [\n  "a",\n',  # the array never closes
        '[project]\ndependencies = ["a\n]\n',  # a string never closes
    ],
)
def test_the_fallback_reader_says_none_when_there_is_no_array(text):
    assert dependencies_from_toml_text(text) is None


def test_the_fallback_reader_keeps_to_the_project_table():
    text = '[[tool.y]]\ndependencies = ["no"]\n[project]\ndependencies = ["yes"]  # c\n'
    assert dependencies_from_toml_text(text) == ["yes"]
    text = '[project]\n[[project.z]]\ndependencies = ["no"]\n'
    assert dependencies_from_toml_text(text) is None
