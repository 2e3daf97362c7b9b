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
