"""Structure (descriptor.schema, rules.structure, rules.prefix): unknown keys, wrong types, the prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from descriptor_files import only_problem, problems_of, write


@pytest.mark.parametrize(
    ("yaml_text", "line", "node", "message", "hint"),
    [
        (
            "nodes:\n  - id: a\n    path: dynamic\n    ouputs: [x]\n",
            4,
            "a",
            "unknown key 'ouputs'",
            "did you mean 'outputs'?",
        ),
        (
            "comunication: {}\nnodes:\n  - id: a\n    path: dynamic\n",
            1,
            None,
            "unknown key 'comunication'",
            "did you mean 'communication'?",
        ),
        (
            "communication:\n  zenoh:\n    prefx: /foo\nnodes:\n  - id: a\n    path: dynamic\n",
            3,
            None,
            "unknown key 'prefx' in communication.zenoh",
            "did you mean 'prefix'?",
        ),
        (
            "nodes:\n  - id: a\n    path: dynamic\n    outputs: [x]\n  - id: b\n    path: dynamic\n"
            "    inputs:\n      x:\n        source: a/x\n        queue_sise: 3\n",
            10,
            "b",
            "unknown key 'queue_sise' in inputs.x",
            "did you mean 'queue_size'?",
        ),
        (
            "nodes:\n  - id: a\n    operator:\n      python: op.py\n      output: [x]\n",
            5,
            "a",
            "unknown key 'output' in operator",
            "did you mean 'outputs'?",
        ),
        (
            "nodes:\n  - id: a\n    custom:\n      run: python op.py\n      outptus: [x]\n",
            5,
            "a",
            "unknown key 'outptus' in custom",
            "did you mean 'outputs'?",
        ),
        (
            "nodes:\n  - id: a\n    path: dynamic\n    zzz: 1\n",
            4,
            "a",
            "unknown key 'zzz'",
            None,
        ),
    ],
)
def test_unknown_keys_suggest_the_nearest(
    tmp_path: Path, yaml_text: str, line: int, node: str | None, message: str, hint: str | None
) -> None:
    path = write(tmp_path, yaml_text, "op.py")
    problem = only_problem(path)
    assert (problem.line, problem.node, problem.message) == (line, node, message)
    if hint is None:
        assert problem.hint is not None and problem.hint.startswith("valid keys are: id, name")
    else:
        assert problem.hint == hint


def test_bad_node_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: a
            path: dynamic
            restart_policy: sometimes
            max_restarts: -1
            restart_delay: soon
            env:
              EMPTY:
              LIST: [1, 2]
        """,
    )
    found = [(p.line, p.message) for p in problems_of(path)]
    assert found == [
        (4, "restart_policy should be 'never', 'on-failure' or 'always' (got 'sometimes')"),
        (5, "max_restarts should be greater than or equal to 0 (got -1)"),
        (6, "restart_delay should be a valid number (got 'soon')"),
        (8, "env.EMPTY has no value"),
        (9, "env.LIST should be a string, a number or a boolean"),
    ]


def test_bad_prefix(tmp_path: Path) -> None:
    for prefix in ("/a/*/b", "@admin", "a//b", "x$y"):
        path = write(
            tmp_path,
            f"communication:\n  zenoh:\n    prefix: {json.dumps(prefix)}\nnodes:\n  - id: a\n    path: dynamic\n",
        )
        problem = only_problem(path)
        assert problem.line == 3
        assert problem.message.startswith("prefix ")


def test_yaml_scalars_that_are_not_strings_get_a_quoting_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    outputs: [on, 1]\n")
    found = [(p.line, p.message, p.hint) for p in problems_of(path)]
    assert found == [
        (
            4,
            "outputs[0] should be a valid string (got True)",
            "YAML reads this value as a boolean; put it in quotes",
        ),
        (
            4,
            "outputs[1] should be a valid string (got 1)",
            "YAML reads this value as a number; put it in quotes",
        ),
    ]


def test_more_node_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - id: dora
            path: dynamic
          - id: empty
            operators: []
          - id: runtime
            args: --x
            operators:
              - {id: a, python: op.py, outputs: [x], send_stdout_as: x}
              - {id: b, python: op.py, outputs: [y], send_stdout_as: y}
          - id: legacy
            custom: {run: python op.py, source: op.py}
          - id: weird
            path: dynamic
            inputs:
              "in/put": dora/timer/millis/1
        """,
        "op.py",
    )
    found = [(p.line, p.node, p.message) for p in problems_of(path)]
    assert found == [
        (2, "dora", "node id 'dora' is reserved for timers (dora/timer/...)"),
        (5, "empty", "'operators' is empty"),
        (7, "runtime", "'args' has no effect on a node with operators"),
        (10, "runtime", "send_stdout_as is given more than once"),
        (12, "legacy", "custom has both 'run' and 'source'"),
        (16, "weird", "input id 'in/put' is not a valid id"),
    ]


@pytest.mark.parametrize(("text", "secure"), [("secure: true\n", True), ("secure: false\n", False), ("", None)])
def test_top_level_secure_key(tmp_path, text, secure):
    """``secure: true`` (dora-zenoh's own key) closes the dataflow as ``run --secure`` does,
    ``secure: false`` opens it; unset, whoever starts it decides (None)."""
    from dora_zenoh.descriptor import load_descriptor

    path = write(tmp_path, text + "nodes:\n  - id: a\n    path: dynamic\n")
    desc = load_descriptor(path)
    assert desc.secure is secure and desc.to_dict()["secure"] is secure


def test_secure_must_be_a_boolean(tmp_path):
    problem = only_problem(write(tmp_path, "secure: 'yes'\nnodes:\n  - id: a\n    path: dynamic\n"))
    assert problem.line == 1 and "secure" in problem.message
