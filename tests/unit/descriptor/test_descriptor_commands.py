"""How a node is started (rules.commands, host): its kind, its command line, files and programs on this machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from descriptor_files import make_executable, only_problem, problems_of, write

from dora_zenoh.descriptor import load_descriptor


def test_exec_found_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = make_executable(bin_dir / "dz-test-tool")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    path = write(
        tmp_path / "flow",
        """
        nodes:
          - id: tool
            path: dz-test-tool
            args: -x 'a b'
        """,
    )
    node = load_descriptor(path).node("tool")
    assert node.kind == "exec"
    assert node.command == [str(tool), "-x", "a b"]


def test_exec_relative_to_the_yaml_folder(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    binary = make_executable(tmp_path / "build" / "node")
    path = write(tmp_path, "nodes:\n  - id: n\n    path: build/node\n")
    assert load_descriptor(path).node("n").command == [str(binary)]


def test_legacy_run_of_a_program(tmp_path: Path) -> None:
    path = write(tmp_path, 'nodes:\n  - id: n\n    custom:\n      run: sh -c "exit 0"\n')
    node = load_descriptor(path).node("n")
    assert node.kind == "exec"
    assert node.command == [shutil.which("sh"), "-c", "exit 0"]


def test_missing_path_file(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: nowhere.py\n")
    problem = only_problem(path)
    assert problem.line == 3
    assert problem.message == f"path 'nowhere.py' does not exist (looked in {tmp_path})"


def test_missing_executable(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dz-no-such-program-anywhere\n")
    problem = only_problem(path)
    assert (
        problem.message
        == f"path 'dz-no-such-program-anywhere' does not exist (looked in {tmp_path} and on PATH)"
    )


def test_not_executable(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: ./tool\n", "tool")
    problem = only_problem(path)
    assert problem.message == "path './tool' is not executable"
    assert problem.hint == f"chmod +x {tmp_path / 'tool'}"


def test_missing_operator_python_file_and_legacy_script(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: a
            operator:
              python: gone.py
          - id: b
            custom:
              run: python3 -u gone_too.py
        """,
    )
    found = [(p.line, p.message) for p in problems_of(path)]
    assert found == [
        (4, f"operator 'op': python file 'gone.py' does not exist (looked in {tmp_path})"),
        (7, f"script 'gone_too.py' does not exist (looked in {tmp_path})"),
    ]


def test_node_kind_must_be_exactly_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: nothing
            outputs: [x]
          - id: both
            path: dynamic
            operator: {python: op.py}
          - id: shell
            path: shell
        """,
        "op.py",
    )
    found = [(p.line, p.node, p.message) for p in problems_of(path)]
    assert found == [
        (2, "nothing", "has nothing to run"),
        (6, "both", "has both 'path' and 'operator'"),
        (8, "shell", "path: shell needs the shell commands in 'args'"),
    ]
