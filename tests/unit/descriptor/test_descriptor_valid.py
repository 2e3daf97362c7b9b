"""Dataflows that load: what every kind of node resolves to (0.3+ and 2022 forms)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from descriptor_files import FIXTURES, make_executable, write

from dora_zenoh.descriptor import (
    Descriptor,
    OperatorSpec,
    ResolvedInput,
    ResolvedNode,
    check_file,
    load_descriptor,
)


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
