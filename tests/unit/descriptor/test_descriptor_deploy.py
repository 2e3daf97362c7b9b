"""``deploy: {machine: ID}`` / ``_unstable_deploy`` (rules.deploy) and which node runs where (placement)."""

from __future__ import annotations

from pathlib import Path

import pytest
from descriptor_files import only_problem, write

from dora_zenoh.descriptor import load_descriptor
from dora_zenoh.descriptor.placement import (
    labelled_nodes,
    local_nodes,
    parse_labels,
    place,
    placement_of,
    remote_nodes,
    resolve,
)
from dora_zenoh.errors import PlacementError
from dora_zenoh.wire.contract import node_config

FLOW = """
nodes:
  - id: cam
    path: cam.py
    {key}: {{machine: robot}}
    outputs: [image]
  - id: gpu
    path: gpu.py
    deploy: {{machine: offboard}}
    inputs: {{image: cam/image}}
    outputs: [boxes]
  - id: ctl
    path: ctl.py
    inputs: {{boxes: gpu/boxes, image: cam/image}}
  - id: viewer
    path: dynamic
    inputs: {{boxes: gpu/boxes}}
"""


@pytest.mark.parametrize("key", ["deploy", "_unstable_deploy"])
def test_machines_are_placed(tmp_path: Path, key: str) -> None:
    desc = load_descriptor(write(tmp_path, FLOW.format(key=key), "cam.py", "gpu.py", "ctl.py"))
    assert remote_nodes(desc) == {"robot": ["cam"], "offboard": ["gpu"]}
    assert local_nodes(desc) == {"ctl", "viewer"}


def test_a_source_on_another_machine_is_closed_only_by_its_exited_token(tmp_path: Path) -> None:
    desc = load_descriptor(write(tmp_path, FLOW.format(key="deploy"), "cam.py", "gpu.py", "ctl.py"))
    gpu = node_config(desc, "f", desc.node("gpu"), "tcp/127.0.0.1:1").inputs["image"]
    ctl = node_config(desc, "f", desc.node("ctl"), "tcp/127.0.0.1:1").inputs
    assert gpu.restartable and ctl["boxes"].restartable and ctl["image"].restartable
    same = load_descriptor(write(tmp_path, FLOW.format(key="deploy").replace("offboard", "robot"),
                                 "cam.py", "gpu.py", "ctl.py"))
    assert not node_config(same, "f", same.node("gpu"), "tcp/127.0.0.1:1").inputs["image"].restartable


def test_bad_machine_id(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: a.py\n    deploy: {machine: 'my robot'}\n", "a.py")
    problem = only_problem(path)
    assert (problem.line, problem.node) == (4, "a")
    assert problem.message == "deploy.machine should be a machine id (letters, digits, '_', '.', '-'), not 'my robot'"


@pytest.mark.parametrize("key", ["deploy", "_unstable_deploy"])
def test_a_machine_written_as_the_whole_deploy_gets_the_form(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, f"nodes:\n  - id: a\n    path: a.py\n    {key}: robot\n", "a.py")
    problem = only_problem(path)
    assert (problem.line, problem.node) == (4, "a")
    assert problem.hint == f"a machine is written `{key}: {{machine: robot}}`"


def test_unknown_deploy_key(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: a.py\n    deploy: {machin: robot}\n", "a.py")
    assert only_problem(path).message == "deploy has unknown key(s) machin"


def test_dynamic_node_cannot_be_placed(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    deploy: {machine: robot}\n")
    assert only_problem(path).message == "deploy.machine has no effect on a dynamic node"


LABELLED = """
nodes:
  - id: cam
    path: cam.py
    outputs: [image]
  - id: det
    path: det.py
    deploy: {labels: {gpu: true, arch: arm64}}
    inputs: {image: cam/image}
    outputs: [boxes]
  - id: ctl
    path: ctl.py
    deploy: {machine: robot, labels: {gpu: "true"}}
    inputs: {boxes: det/boxes}
"""


def test_labels_are_placed_on_the_first_daemon_that_has_them_all(tmp_path: Path) -> None:
    desc = load_descriptor(write(tmp_path, LABELLED, "cam.py", "det.py", "ctl.py"))
    assert labelled_nodes(desc) == {"det": {"gpu": "true", "arch": "arm64"}}  # machine wins over labels (dora)
    assert remote_nodes(desc) == {"robot": ["ctl"]} and local_nodes(desc) == {"cam"}  # det: not placed yet
    daemons = {"z-box": {"gpu": "true", "arch": "arm64", "room": "lab"}, "robot": {"gpu": "false"},
               "b-box": {"gpu": "true", "arch": "arm64"}}
    placement = resolve(desc, daemons)
    assert placement == {"det": "b-box"}  # a superset of the labels; the first machine id in order
    place(desc, placement)
    assert remote_nodes(desc) == {"b-box": ["det"], "robot": ["ctl"]} and local_nodes(desc) == {"cam"}
    assert placement_of(desc) == {"det": "b-box"}  # what the coordinator hands every daemon
    # the input from another machine is one across machines, as for `machine:`
    assert node_config(desc, "f", desc.node("det"), "tcp/127.0.0.1:1").inputs["image"].restartable


def test_no_daemon_with_the_labels_names_the_node_and_the_daemons(tmp_path: Path) -> None:
    desc = load_descriptor(write(tmp_path, LABELLED, "cam.py", "det.py", "ctl.py"))
    with pytest.raises(PlacementError) as err:
        resolve(desc, {"robot": {"gpu": "true"}, "bare": {}})
    assert str(err.value).startswith("no connected daemon has the labels: node 'det' asks for arch=arm64,gpu=true "
                                     "(daemons: 'bare' (no labels); 'robot' gpu=true); start one with "
                                     "`dora-zenoh daemon --labels k=v ...`"), str(err.value)


@pytest.mark.parametrize(("labels", "message"), [
    ("[gpu]", "deploy.labels should be a mapping of label: value, not ['gpu']"),
    ("{gpu: 'yes please'}", "deploy.labels: 'gpu': 'yes please' is not a label (letters, digits, '_', '.', '-', '/')"),
    ("{gpu: {a: 1}}", "deploy.labels: 'gpu': {'a': 1} is not a label (letters, digits, '_', '.', '-', '/')"),
])
def test_bad_labels(tmp_path: Path, labels: str, message: str) -> None:
    path = write(tmp_path, f"nodes:\n  - id: a\n    path: a.py\n    deploy: {{labels: {labels}}}\n", "a.py")
    problem = only_problem(path)
    assert (problem.message, problem.node, problem.line) == (message, "a", 4)


def test_dynamic_node_cannot_ask_for_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    deploy: {labels: {gpu: 'true'}}\n")
    assert only_problem(path).message == "deploy.labels has no effect on a dynamic node"


def test_daemon_labels_text() -> None:
    assert parse_labels(" gpu=true, arch=arm64 ,") == {"gpu": "true", "arch": "arm64"}
    assert parse_labels("") == {}
    with pytest.raises(ValueError, match="'gpu' is not a label: use key=value"):
        parse_labels("gpu")
