"""Inputs (rules.inputs): sources that must name declared outputs, timers, queues."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from descriptor_files import only_problem, problems_of, write

from dora_zenoh.descriptor import load_descriptor


def test_undeclared_output_lists_declared_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: cam
            path: dynamic
            outputs: [image, depth]
          - id: camera
            path: dynamic
            inputs:
              image: cam/frame
        """,
    )
    problem = only_problem(path)
    assert str(problem) == (
        f"{path}:8: node 'camera': input 'image' names output 'frame' of node 'cam', which it does not declare"
        "\n  hint: declared outputs of 'cam': image, depth"
    )


def test_missing_source_node_suggests_nearest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nodes:\n  - id: camera\n    path: dynamic\n    outputs: [image]\n"
        "  - id: plot\n    path: dynamic\n    inputs:\n      image: camra/image\n      other: zzz/image\n",
    )
    first, second = problems_of(path)
    assert (first.line, first.node) == (8, "plot")
    assert first.message == "input 'image' reads from node 'camra', which does not exist"
    assert first.hint == "did you mean 'camera'?"
    assert second.line == 9
    assert second.hint == "nodes of this dataflow: camera, plot"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("dora/timer/minutes/1", "input 't' has unknown timer unit 'minutes' in 'dora/timer/minutes/1'"),
        ("dora/timer/milis/1", "input 't' has unknown timer unit 'milis' in 'dora/timer/milis/1'"),
        ("dora/timer/millis/abc", "input 't': timer period 'abc' is not a whole number"),
        ("dora/timer/secs/1.5", "input 't': timer period '1.5' is not a whole number"),
        ("dora/timer/hz/fast", "input 't': timer frequency 'fast' is not a number"),
        ("dora/timer/millis/0", "input 't': timer period must be positive, not 0"),
        ("dora/timer/secs/-2", "input 't': timer period must be positive, not -2"),
        ("dora/timer/hz/0", "input 't': timer frequency must be positive, not 0"),
        ("dora/clock/millis/1", "input 't' has unknown built-in source 'dora/clock/millis/1'"),
        ("dora/timer/millis", "input 't' has unknown built-in source 'dora/timer/millis'"),
    ],
)
def test_bad_timers(tmp_path: Path, source: str, message: str) -> None:
    path = write(tmp_path, f"nodes:\n  - id: a\n    path: dynamic\n    inputs:\n      t: {source}\n")
    problem = only_problem(path)
    assert (problem.line, problem.node, problem.message) == (5, "a", message)
    if "milis" in source:
        assert problem.hint is not None and problem.hint.startswith("did you mean 'millis'?")


def test_fractional_hz_timer(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    inputs:\n      t: dora/timer/hz/0.5\n")
    assert load_descriptor(path).node("a").inputs["t"].timer_ns == 2_000_000_000


def test_self_input(tmp_path: Path) -> None:
    path = write(
        tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    outputs: [x]\n    inputs:\n      me: a/x\n"
    )
    problem = only_problem(path)
    assert (problem.line, problem.message) == (6, "input 'me' reads 'a/x', an output of its own node")
    assert problem.hint == "a node cannot receive its own output; use an internal variable or a timer"


def test_operator_consuming_its_own_output(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: n
            operators:
              - id: a
                python: op.py
                inputs: {loop: n/a/out}
                outputs: [out]
        """,
        "op.py",
    )
    problem = only_problem(path)
    assert (problem.line, problem.message) == (6, "operator 'a': input 'loop' reads its own output 'out'")


def test_operator_source_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: multi
            operators:
              - {id: a, python: op.py, outputs: [x]}
              - {id: b, python: op.py, outputs: [y]}
          - id: single
            operator: {id: only, python: op.py, outputs: [z]}
          - id: sink
            path: dynamic
            inputs:
              ok1: single/z
              ok2: single/only/z
              ok3: multi/b/y
              bad1: multi/x
              bad2: multi/c/x
              bad3: multi/a/y
              bad4: sink2/x/y
        """,
        "op.py",
    )
    found = [(p.line, p.message, p.hint) for p in problems_of(path)]
    assert found == [
        (
            14,
            "input 'bad1' must name an operator of node 'multi', which has several",
            "write multi/<operator>/<output>; declared outputs of 'multi': a/x, b/y",
        ),
        (
            15,
            "input 'bad2' names operator 'c' of node 'multi', which does not exist",
            "operators of 'multi': a, b",
        ),
        (
            16,
            "input 'bad3' names output 'a/y' of node 'multi', which it does not declare",
            "declared outputs of 'multi': a/x, b/y",
        ),
        (17, "input 'bad4' reads from node 'sink2', which does not exist", "did you mean 'sink'?"),
    ]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("    queue_size: 0\n", 6, "inputs.x.queue_size should be greater than or equal to 1 (got 0)"),
        ("    queue_size: 1000000000000000\n", 6,
         "inputs.x.queue_size should be less than or equal to 1000000 (got 1000000000000000)"),
        ("    queue_size: ten\n", 6, "inputs.x.queue_size should be a valid integer (got 'ten')"),
        (
            "    queue_policy: newest\n",
            6,
            "inputs.x.queue_policy should be 'drop_oldest' or 'block' (got 'newest')",
        ),
    ],
)
def test_bad_long_inputs(tmp_path: Path, body: str, line: int, message: str) -> None:
    text = (
        "nodes:\n  - id: a\n    path: dynamic\n    inputs:\n      x:\n        source: dora/timer/millis/1\n"
    )
    path = write(tmp_path, text + textwrap.indent(body, "    "))
    problem = only_problem(path)
    assert (problem.line, problem.message) == (line + 1, message)


def test_timer_faster_than_1_mhz(tmp_path: Path) -> None:
    """The YAML check uses the one timer parser (descriptor.timers), which refuses sub-µs periods."""
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    inputs:\n      t: dora/timer/hz/2000000\n")
    problem = only_problem(path)
    assert (problem.line, problem.node, problem.message, problem.hint) == (
        5, "a", "input 't': timer 'dora/timer/hz/2000000' is faster than 1 MHz", "use a period of at least 1 µs"
    )
    fastest = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    inputs:\n      t: dora/timer/hz/1000000\n")
    assert load_descriptor(fastest).node("a").inputs["t"].timer_ns == 1_000
