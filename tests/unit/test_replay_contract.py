"""Which outputs a sender keeps for replay, and which inputs recover (wire/contract.py, issue 24).

Only a `queue_policy: block` input whose source runs on another machine recovers what a link
outage lost; everything on one machine keeps the plain publishers and subscribers it had.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from dora_zenoh import settings
from dora_zenoh.descriptor import load_descriptor
from dora_zenoh.node.replay import kept_for
from dora_zenoh.wire.contract import NodeConfig, node_config

EP = "tcp/127.0.0.1:7000"


def _configs(tmp_path: Path, yaml: str) -> dict[str, NodeConfig]:
    path = tmp_path / "dataflow.yml"
    path.write_text(textwrap.dedent(yaml))
    for name in ("cam", "det", "log", "act"):
        (tmp_path / f"{name}.py").write_text("")
    desc = load_descriptor(path)
    return {n.id: node_config(desc, "flow", n, EP, fresh_start=True) for n in desc.nodes}


TWO_MACHINES = """
    nodes:
      - id: cam
        path: cam.py
        deploy: {machine: robot}
        inputs: {tick: dora/timer/millis/50}
        outputs: [image, depth]
      - id: det
        path: det.py
        deploy: {machine: gpu}
        inputs:
          image: {source: cam/image, queue_policy: block}
          depth: cam/depth
      - id: act
        path: act.py
        deploy: {machine: robot}
        inputs:
          image: {source: cam/image, queue_policy: block}
          depth: {source: cam/depth, queue_policy: block}
"""


def test_a_block_reader_on_another_machine_gets_a_replayed_output(tmp_path: Path) -> None:
    cfg = _configs(tmp_path, TWO_MACHINES)
    # image: a block reader on gpu (det). depth: its only remote reader drops: no replay.
    assert cfg["cam"].replay_outputs == ["image"]
    assert cfg["det"].inputs["image"].recover and not cfg["det"].inputs["depth"].recover
    # act runs on the robot, next to cam: plain subscribers, as on one machine.
    assert not any(i.recover for i in cfg["act"].inputs.values())
    for c in cfg.values():
        assert NodeConfig.from_json(c.to_json()) == c  # through the JSON the runner hands over


def test_one_machine_has_no_replay(tmp_path: Path) -> None:
    cfg = _configs(tmp_path, TWO_MACHINES.replace("deploy: {machine: gpu}", "deploy: {machine: robot}"))
    assert all(not c.replay_outputs for c in cfg.values())
    assert not any(i.recover for c in cfg.values() for i in c.inputs.values())
    assert "replay_outputs" not in cfg["cam"].to_dict() and "recover" not in cfg["det"].inputs["image"].to_dict()


def test_the_bound_is_a_setting() -> None:
    assert settings.REPLAY_MESSAGES.default == 256
    assert settings.by_name("DORA_ZENOH_REPLAY_MESSAGES") is settings.REPLAY_MESSAGES


def test_the_bytes_bound_caps_the_messages_kept() -> None:
    assert kept_for(16, 256, 64 << 20) == 256          # small messages: the message bound
    assert kept_for(1 << 20, 256, 64 << 20) == 64      # 1 MiB images: 64 MiB of them
    assert kept_for(100 << 20, 256, 64 << 20) == 1     # always the last one at least
    assert kept_for(1 << 20, 256, 0) == 256            # 0: no bytes limit
    assert kept_for(0, 256, 64 << 20) == 256           # size unknown: the message bound
    assert settings.REPLAY_BYTES.default == 64 << 20
