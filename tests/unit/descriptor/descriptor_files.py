"""Helpers of the descriptor tests: write a dataflow (and the files it names) and check it.

Each test writes its dataflow into ``tmp_path``, because paths in a dataflow are
resolved relative to the YAML file's folder.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dora_zenoh.descriptor import DescriptorError, Problem, check_file, load_descriptor

FIXTURES = Path(__file__).parent / "files"


def write(folder: Path, yaml_text: str, *files: str, name: str = "dataflow.yml") -> Path:
    """Write a dataflow (dedented) and empty helper files next to it; return the YAML path."""
    for file in files:
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# dummy node\n")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(yaml_text).lstrip("\n"))
    return path


def make_executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def problems_of(path: Path) -> list[Problem]:
    problems = check_file(path)
    with pytest.raises(DescriptorError) as info:
        load_descriptor(path)
    assert info.value.problems == problems
    return problems


def only_problem(path: Path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]

