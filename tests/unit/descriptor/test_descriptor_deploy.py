"""``deploy: {machine: ID}`` / ``_unstable_deploy`` (rules.deploy) and which node runs where (placement)."""

from __future__ import annotations

from pathlib import Path

import pytest
from descriptor_files import only_problem, write

from dora_zenoh.descriptor import load_descriptor
from dora_zenoh.descriptor.placement import local_nodes, remote_nodes
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


def test_unknown_deploy_key(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: a.py\n    deploy: {machin: robot}\n", "a.py")
    assert only_problem(path).message == "deploy has unknown key(s) machin"


def test_dynamic_node_cannot_be_placed(tmp_path: Path) -> None:
    path = write(tmp_path, "nodes:\n  - id: a\n    path: dynamic\n    deploy: {machine: robot}\n")
    assert only_problem(path).message == "deploy.machine has no effect on a dynamic node"
