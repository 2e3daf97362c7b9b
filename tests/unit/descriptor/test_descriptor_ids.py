"""Ids of nodes, operators and outputs (rules.ids, rules.outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from descriptor_files import only_problem, problems_of, write


def test_duplicate_node_id(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n  - id: a\n    path: dynamic\n")
    problem = only_problem(path)
    assert (problem.line, problem.node, problem.message) == (4, "a", "node id 'a' is used twice")
    assert problem.hint == "the first node 'a' is at line 2; ids must be unique"


@pytest.mark.parametrize("bad_id", ["cam/left", "*", "@cam", "-cam", ".cam", "cam era"])
def test_malformed_node_id(tmp_path: Path, bad_id: str) -> None:
    path = write(tmp_path, f"nodes:\n  - id: {json.dumps(bad_id)}\n    path: dynamic\n")
    problem = only_problem(path)
    assert (problem.line, problem.message) == (2, f"node id '{bad_id}' is not a valid id")


def test_malformed_and_duplicate_outputs_and_operators(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: a
            path: dynamic
            outputs: [ok, bad/out, ok]
          - id: b
            operators:
              - id: x
                python: op.py
              - id: x
                python: op.py
        """,
        "op.py",
    )
    found = [(p.line, p.message) for p in problems_of(path)]
    assert found == [
        (4, "output id 'bad/out' is not a valid id"),
        (4, "output 'ok' is declared twice"),
        (9, "operator id 'x' is used twice in this node"),
    ]
