"""Tests of the dataflow descriptor: loading, resolution and every reported problem.

Each test writes its dataflow (and the dummy scripts it names) into ``tmp_path``,
because paths in a dataflow are resolved relative to the YAML file's folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from dora_zenoh.descriptor import (
    Descriptor,
    DescriptorError,
    OperatorSpec,
    Problem,
    ResolvedInput,
    ResolvedNode,
    check_file,
    load_descriptor,
)

FIXTURES = Path(__file__).parent / "descriptors"


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


# ---------------------------------------------------------------------------------------------
# Valid dataflows
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def v03(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Descriptor:
    monkeypatch.setenv("DZ_TEST_HOME", "/home/robot")
    monkeypatch.delenv("DZ_TEST_SURELY_UNSET", raising=False)
    shutil.copy(FIXTURES / "v03_dataflow.yml", tmp_path / "dataflow.yml")
    for script in ("camera.py", "plot.py", "object_detection.py", "op_filter.py", "op_tracker.py"):
        (tmp_path / script).write_text("# dummy\n")
    make_executable(tmp_path / "tool")
    assert check_file(tmp_path / "dataflow.yml") == []
    return load_descriptor(tmp_path / "dataflow.yml")


def test_v03_top_level(v03: Descriptor, tmp_path: Path) -> None:
    assert v03.path == tmp_path / "dataflow.yml"
    assert v03.path.is_absolute()
    assert v03.base_dir == tmp_path
    assert v03.prefix == "dora"
    assert v03.name == "vision"
    assert v03.raw["name"] == "vision"
    assert [n.id for n in v03.nodes] == [
        "camera",
        "detector",
        "pipeline",
        "plot",
        "recorder",
        "banner",
        "tool",
    ]
    with pytest.raises(KeyError):
        v03.node("nope")


def test_v03_python_node(v03: Descriptor, tmp_path: Path) -> None:
    camera = v03.node("camera")
    assert isinstance(camera, ResolvedNode)
    assert camera.kind == "python"
    assert camera.command == [
        sys.executable,
        "-u",
        str(tmp_path / "camera.py"),
        "--device",
        "0",
        "--title",
        "front cam",
    ]
    assert camera.outputs == ["image", "depth", "log"]
    assert camera.send_stdout_as == "log"
    assert camera.restart_policy == "on-failure"
    assert camera.max_restarts == 3
    assert camera.restart_delay == 0.5
    assert camera.description == "publishes frames"
    assert camera.line == 5


def test_v03_env_expansion(v03: Descriptor) -> None:
    assert v03.node("camera").env == {
        "CAMERA_HOME": "/home/robot/cam",
        "CONFIG": "/home/robot/config.toml",
        "UNSET": "$DZ_TEST_SURELY_UNSET",  # os.path.expandvars leaves unknown variables alone
        "WIDTH": "640",
        "GAIN": "1.5",
        "MIRROR": "true",
    }


def test_v03_timer_inputs(v03: Descriptor) -> None:
    tick = v03.node("camera").inputs["tick"]
    assert isinstance(tick, ResolvedInput)
    assert (tick.source, tick.source_node, tick.source_output) == ("dora/timer/millis/50", None, None)
    assert tick.timer_ns == 50_000_000
    assert tick.is_timer
    assert tick.line == 10
    assert v03.node("plot").inputs["fast"].timer_ns == round(1e9 / 30)
    assert v03.node("pipeline").operators[1].inputs["slow"].timer_ns == 2_000_000_000


def test_v03_short_and_long_inputs(v03: Descriptor) -> None:
    image = v03.node("plot").inputs["image"]
    assert (image.source, image.source_node, image.source_output) == ("camera/image", "camera", "image")
    assert (image.queue_size, image.queue_policy, image.timer_ns) == (10, "drop_oldest", None)
    raw = v03.node("pipeline").operators[0].inputs["raw"]
    assert (raw.queue_size, raw.queue_policy) == (1, "block")


def test_single_operator_sources_are_normalised(v03: Descriptor, tmp_path: Path) -> None:
    detector = v03.node("detector")
    assert detector.kind == "runtime"
    assert detector.command is None
    assert detector.outputs == ["op/bbox"]
    [op] = detector.operators
    assert isinstance(op, OperatorSpec)
    assert (op.id, op.python, op.outputs) == ("op", tmp_path / "object_detection.py", ["bbox"])
    # `detector/bbox` names the output of the node's only operator, whose id defaults to "op".
    bbox = v03.node("plot").inputs["bbox"]
    assert (bbox.source, bbox.source_node, bbox.source_output) == ("detector/op/bbox", "detector", "op/bbox")
    assert v03.node("pipeline").operators[0].inputs["raw"].source == "detector/op/bbox"


def test_operators_node(v03: Descriptor, tmp_path: Path) -> None:
    pipeline = v03.node("pipeline")
    assert pipeline.kind == "runtime"
    assert [op.id for op in pipeline.operators] == ["filter", "tracker"]
    assert pipeline.operators[1].python == tmp_path / "op_tracker.py"  # `python: {source: ...}`
    assert pipeline.outputs == ["filter/clean", "tracker/tracks"]
    # operators of one node may feed each other
    boxes = pipeline.operators[1].inputs["boxes"]
    assert (boxes.source, boxes.source_node, boxes.source_output) == (
        "pipeline/filter/clean",
        "pipeline",
        "filter/clean",
    )
    # the node's inputs are its operators' inputs, keyed "opid/input"
    assert sorted(pipeline.inputs) == ["filter/raw", "tracker/boxes", "tracker/slow"]
    assert pipeline.inputs["tracker/boxes"].source == "pipeline/filter/clean"
    tracks = v03.node("plot").inputs["tracks"]
    assert (tracks.source, tracks.source_output) == ("pipeline/tracker/tracks", "tracker/tracks")


def test_dynamic_shell_and_exec_nodes(v03: Descriptor, tmp_path: Path) -> None:
    recorder = v03.node("recorder")
    assert (recorder.kind, recorder.command, recorder.outputs) == ("dynamic", None, ["saved"])
    banner = v03.node("banner")
    assert banner.kind == "shell"
    assert banner.command == ["/bin/sh", "-c", 'echo "dataflow started" && sleep 1']
    tool = v03.node("tool")
    assert tool.kind == "exec"
    assert tool.command == [str(tmp_path / "tool"), "--verbose", "3"]  # numbers in an args list become text
    assert tool.inputs["saved"].source == "recorder/saved"  # dynamic nodes are fine as sources


def test_resolved_objects_serialise_to_json(v03: Descriptor) -> None:
    for node in v03.nodes:
        data = json.loads(json.dumps(node.to_dict()))
        assert data["id"] == node.id
        assert set(data["inputs"]) == set(node.inputs)
    data = v03.node("pipeline").to_dict()
    assert data["operators"][0]["python"].endswith("op_filter.py")
    assert data["inputs"]["filter/raw"]["queue_policy"] == "block"
    assert json.loads(json.dumps(v03.to_dict()))["prefix"] == "dora"


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


def test_legacy_2022_form(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "legacy_2022.yml", tmp_path / "dataflow.yml")
    (tmp_path / "source.py").write_text("# dummy\n")
    (tmp_path / "printer.py").write_text("# dummy\n")
    desc = load_descriptor(tmp_path / "dataflow.yml")
    assert desc.prefix == "foo"
    source = desc.node("source")
    assert source.kind == "python"
    assert source.command == [sys.executable, "-u", str(tmp_path / "source.py"), "--rate", "10"]
    assert source.outputs == ["random"]
    assert source.env == {"SEED": "42"}
    printer = desc.node("printer")
    assert printer.command == [sys.executable, "-u", str(tmp_path / "printer.py")]
    assert printer.inputs["random"].source == "source/random"
    assert printer.inputs["random"].line == 19
    assert printer.inputs["tick"].timer_ns == 100_000_000
    # `source:` is the older name of `run:`; a .py path is run with our interpreter
    old = desc.node("old_source")
    assert old.command == [sys.executable, "-u", str(tmp_path / "printer.py"), "--quiet"]


def test_legacy_run_of_a_program(tmp_path: Path) -> None:
    path = write(tmp_path, 'nodes:\n  - id: n\n    custom:\n      run: sh -c "exit 0"\n')
    node = load_descriptor(path).node("n")
    assert node.kind == "exec"
    assert node.command == [shutil.which("sh"), "-c", "exit 0"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("/foo", "foo"),
        ("/foo/", "foo"),
        ("lab/robot1", "lab/robot1"),
        ("", "dora"),
        ("/", "dora"),
        (None, "dora"),
    ],
)
def test_prefix(tmp_path: Path, prefix: str | None, expected: str) -> None:
    value = "" if prefix is None else json.dumps(prefix)
    path = write(
        tmp_path, f"communication:\n  zenoh:\n    prefix: {value}\nnodes:\n  - id: a\n    path: dynamic\n"
    )
    assert load_descriptor(path).prefix == expected


def test_yaml_merge_keys_and_node_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        nodes:
          - &base
            id: a
            path: dynamic
            outputs: [x]
            env: {MODE: fast}
          - <<: *base
            id: b
            inputs: {x: a/x}
        """,
    )
    desc = load_descriptor(path)
    assert desc.node("b").env == {"MODE": "fast"}
    assert desc.node("b").inputs["x"].source == "a/x"


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------


def test_problem_format() -> None:
    problem = Problem(
        "dataflow.yml",
        12,
        "camera",
        "input 'image' names output 'frame' of node 'cam', which it does not declare",
        "declared outputs of 'cam': image, depth",
    )
    assert str(problem) == (
        "dataflow.yml:12: node 'camera': input 'image' names output 'frame' of node 'cam', which it does not declare"
        "\n  hint: declared outputs of 'cam': image, depth"
    )
    assert str(Problem("d.yml", 3, None, "boom", None)) == "d.yml:3: boom"
    assert str(Problem("d.yml", None, None, "file not found", None)) == "d.yml: file not found"


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


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path dynamic\n  - id: b\n")
    problem = only_problem(path)
    assert problem.line == 3
    assert problem.message.startswith("YAML syntax error: could not find expected ':'")


def test_yaml_unclosed_quote(tmp_path: Path) -> None:
    path = write(tmp_path, 'nodes:\n  - id: a\n    path: "dynamic\n    outputs: [x]\n')
    problem = only_problem(path)
    assert problem.message.startswith("YAML syntax error")
    assert "line 3" in (problem.hint or "")


def test_yaml_tab_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n\tpath: dynamic\n")
    problem = only_problem(path)
    assert problem.line == 3
    assert "tabs" in (problem.hint or "")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    outputs: [x]\n    outputs: [y]\n")
    problem = only_problem(path)
    assert (problem.line, problem.message) == (5, "key 'outputs' is given twice in the same mapping")
    assert problem.hint == "the first 'outputs' is at line 4; keep only one"


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


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("    queue_size: 0\n", 6, "inputs.x.queue_size should be greater than or equal to 1 (got 0)"),
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


def test_bad_prefix(tmp_path: Path) -> None:
    for prefix in ("/a/*/b", "@admin", "a//b", "x$y"):
        path = write(
            tmp_path,
            f"communication:\n  zenoh:\n    prefix: {json.dumps(prefix)}\nnodes:\n  - id: a\n    path: dynamic\n",
        )
        problem = only_problem(path)
        assert problem.line == 3
        assert problem.message.startswith("prefix ")


def test_several_problems_at_once(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "many_problems.yml", tmp_path / "dataflow.yml")
    (tmp_path / "camera.py").write_text("")
    (tmp_path / "plot.py").write_text("")
    problems = problems_of(tmp_path / "dataflow.yml")
    found = [(p.line, p.node, p.message) for p in problems]
    assert found == [
        (5, "camera", "unknown key 'ouputs'"),
        (6, "camera", "node id 'camera' is used twice"),
        (11, "plot", "input 'image' names output 'frame' of node 'camera', which it does not declare"),
        (12, "plot", "input 'other' reads from node 'camra', which does not exist"),
        (13, "plot", "input 'tick' has unknown timer unit 'minutes' in 'dora/timer/minutes/1'"),
        (14, "plot", "input 'me' reads 'plot/out', an output of its own node"),
        (16, "plot", "send_stdout_as names 'logs', which is not one of its outputs"),
        (17, "bad/id", "node id 'bad/id' is not a valid id"),
        (18, "bad/id", f"path 'missing.py' does not exist (looked in {tmp_path})"),
    ]
    with pytest.raises(DescriptorError) as info:
        load_descriptor(tmp_path / "dataflow.yml")
    text = str(info.value)
    assert text.splitlines()[-1] == f"9 problems found in {tmp_path / 'dataflow.yml'}"
    assert text.startswith(str(problems[0]))
    assert all(str(p) in text for p in problems)


def test_descriptor_error_singular_and_pickle(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    inputs: {x: b/y}\n")
    with pytest.raises(DescriptorError) as info:
        load_descriptor(path)
    assert str(info.value).splitlines()[-1] == f"1 problem found in {path}"
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.problems == info.value.problems
    assert str(copy) == str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("# just a comment\n", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping with a 'nodes:' key, not a list"),
        ("nodes: []\n", "the dataflow has no nodes"),
        ("nodes: 3\n", "nodes should be a valid list (got 3)"),
        ("name: x\n", "missing required key 'nodes'"),
        ("nodes:\n  - just a string\n", "each entry of 'nodes' must be a mapping"),
    ],
)
def test_unusable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "dataflow.yml"
    path.write_text(content)
    assert only_problem(path).message == message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "nope.yml")
    assert (problem.file, problem.line, problem.message) == (
        str(tmp_path / "nope.yml"),
        None,
        "file not found",
    )
    assert only_problem(tmp_path).message == "is a folder, not a dataflow file"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dataflow.yml"
    path.write_bytes(b"nodes:\n  - id: \xff\xfe\n")
    assert only_problem(path).message.startswith("is not UTF-8 text")


def test_file_label_is_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "nodes:\n  - id: a\n    path: gone.py\n")
    monkeypatch.chdir(tmp_path)
    problem = only_problem(Path("dataflow.yml"))
    assert str(problem).startswith("dataflow.yml:3: node 'a': path 'gone.py' does not exist")


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
