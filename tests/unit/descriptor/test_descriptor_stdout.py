"""send_stdout_as (rules.stdout)."""

from __future__ import annotations

from pathlib import Path

from descriptor_files import only_problem, write

from dora_zenoh.descriptor import load_descriptor


def test_send_stdout_as_must_be_an_output(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nodes:\n  - id: a\n    path: dynamic\n    outputs: [data, log]\n    send_stdout_as: logs\n",
    )
    problem = only_problem(path)
    assert (problem.line, problem.message) == (
        5,
        "send_stdout_as names 'logs', which is not one of its outputs",
    )
    assert problem.hint == "declared outputs: data, log; add 'logs' to outputs or fix the name"


def test_operator_send_stdout_as(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nodes:\n  - id: a\n    operator:\n      python: op.py\n      outputs: [log]\n      send_stdout_as: log\n",
        "op.py",
    )
    assert load_descriptor(path).node("a").send_stdout_as == "op/log"
    path.write_text(path.read_text().replace("send_stdout_as: log", "send_stdout_as: lag"))
    assert only_problem(path).message == "send_stdout_as names 'lag', which is not one of its outputs"
