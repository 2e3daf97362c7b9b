"""supervision/spawn.py node_env: what the runner puts in a node's environment for dora-rs's API."""
from __future__ import annotations

import json
import os
from pathlib import Path

from dora_zenoh import settings
from dora_zenoh.descriptor import load_descriptor
from dora_zenoh.supervision.spawn import node_env
from dora_zenoh.wire.contract import NodeConfig

ROOT = Path(__file__).resolve().parents[2]
EP = "tcp/127.0.0.1:7000"
RUN = "3f2b8c1e-6a4d-4e8f-9b1a-0c2d3e4f5a6b"


def _env(restart: bool, restart_count: int) -> tuple[dict[str, str], NodeConfig]:
    desc = load_descriptor(ROOT / "examples" / "timer-pipeline" / "dataflow.yml")
    node = desc.nodes[0]
    env = node_env({}, desc, "flow", node, EP, restart=restart, dataflow_uuid=RUN, restart_count=restart_count)
    return env, NodeConfig.from_json(env[settings.NODE_CONFIG.name])


def test_first_start_carries_the_run_uuid_and_dora_rs_variables():
    env, cfg = _env(restart=False, restart_count=0)
    assert cfg.dataflow_uuid == RUN and cfg.restart_count == 0 and cfg.fresh_start
    assert json.loads(env[settings.DORA_NODE_CONFIG.name]) == {"dataflow_id": RUN, "node_id": cfg.node}
    assert env[settings.NODE_ID.name] == cfg.node
    assert env[settings.RUN_PARENT_PID.name] == str(os.getpid())


def test_a_restart_carries_its_count():
    _, cfg = _env(restart=True, restart_count=2)
    assert cfg.restart_count == 2 and not cfg.fresh_start and cfg.dataflow_uuid == RUN


def _chain(tmp_path: Path, nodes: int, extra_env: str = "") -> Path:
    lines = ["nodes:", "  - id: n0", "    path: n.py", "    outputs: [out]"]
    for i in range(1, nodes):
        lines += [f"  - id: n{i}", "    path: n.py", f"    inputs: {{in: n{i - 1}/out}}", "    outputs: [out]"]
    if extra_env:
        lines += ["    env:", f"      {extra_env}"]
    (tmp_path / "n.py").write_text("")
    path = tmp_path / "dataflow.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _shm_of(desc, base: dict[str, str]) -> list[str | None]:
    return [node_env(base, desc, "flow", node, EP).get(settings.SHM.name) for node in desc.nodes]


def test_shared_memory_is_left_on_in_small_dataflows_and_off_in_large_ones_unless_set(tmp_path):
    """An idle process wakes 20 times a second for each link with shared memory at both ends: a
    dataflow of more than SHM_AUTO_NODES nodes gets it only where the user asks for it."""
    from dora_zenoh.wire.zconfig import SHM_AUTO_NODES

    small = load_descriptor(_chain(tmp_path, SHM_AUTO_NODES))
    assert set(_shm_of(small, {})) == {None}  # the default: on
    large = load_descriptor(_chain(tmp_path, SHM_AUTO_NODES + 1))
    assert set(_shm_of(large, {})) == {"0"}
    assert set(_shm_of(large, {settings.SHM.name: "1"})) == {"1"}  # the user's, for every node
    one = load_descriptor(_chain(tmp_path, SHM_AUTO_NODES + 1, extra_env=f"{settings.SHM.name}: '1'"))
    assert _shm_of(one, {})[-1] == "1" and set(_shm_of(one, {})[:-1]) == {"0"}  # the node's own env
