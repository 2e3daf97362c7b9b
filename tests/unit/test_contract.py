"""wire/contract.py: the runner->node configuration, built from real dataflows, through JSON and back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dora_zenoh.descriptor import load_descriptor
from dora_zenoh.errors import NodeConfigError
from dora_zenoh.node.adhoc import adhoc_config
from dora_zenoh.wire.contract import InputConfig, NodeConfig, OperatorConfig, RunnerIdentity, node_config

ROOT = Path(__file__).resolve().parents[2]
DATAFLOWS = sorted(ROOT.glob("examples/*/*.yml")) + [ROOT / "launch" / "robot.yml"]
EP = "tcp/127.0.0.1:7000"


def _configs(path: Path) -> list[NodeConfig]:
    desc = load_descriptor(path)
    return [node_config(desc, "flow", node, EP, fresh_start=True) for node in desc.nodes]


@pytest.mark.parametrize("path", DATAFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_configs_of_example_dataflows_round_trip(path):
    configs = _configs(path)
    assert configs
    for cfg in configs:
        text = cfg.to_json()
        assert NodeConfig.from_json(text) == cfg
        assert NodeConfig.from_json(text.encode()) == cfg  # a dynamic node gets bytes
        assert json.loads(text)["node"] == cfg.node


def test_config_of_a_timer_pipeline_has_typed_inputs_and_readers():
    by_id = {c.node: c for c in _configs(ROOT / "examples" / "timer-pipeline" / "dataflow.yml")}
    timers = [i for c in by_id.values() for i in c.inputs.values() if i.is_timer]
    assert timers and all(t.timer_ns and t.key is None for t in timers)
    data = [i for c in by_id.values() for i in c.inputs.values() if not i.is_timer]
    assert data and all(i.key == f"dora/flow/{i.source_node}/{i.source_output}" for i in data)
    for cfg in by_id.values():
        assert cfg.descriptor and cfg.descriptor.endswith("dataflow.yml")
        assert cfg.supervised and cfg.fresh_start and cfg.endpoint == EP
        for out_id, key in cfg.outputs.items():
            assert key == f"dora/flow/{cfg.node}/{out_id}"
        for readers in cfg.readers.values():
            assert all(r in by_id for r in readers)


def test_operator_runtime_config_lists_its_operators():
    configs = _configs(ROOT / "examples" / "python-operator" / "dataflow.yml")
    ops = [op for c in configs for op in c.operators]
    assert ops and all(isinstance(op, OperatorConfig) and op.python.endswith(".py") for op in ops)
    assert all("operators" not in json.loads(c.to_json()) for c in configs if not c.operators)


def test_ros_like_config_round_trips():
    cfg = adhoc_config("viewer", {"image": "camera/image", "tick": "dora/timer/hz/10",
                                  "slow": {"source": "a/b", "queue_size": 2, "queue_policy": "block"}},
                       ["cmd"], None, "dora", EP)
    assert NodeConfig.from_json(cfg.to_json()) == cfg
    assert cfg.dataflow == "default" and not cfg.supervised and cfg.descriptor is None
    assert cfg.inputs["tick"] == InputConfig(timer_ns=100_000_000)
    assert cfg.inputs["image"].restartable and cfg.inputs["image"].key == "dora/default/camera/image"
    assert cfg.inputs["slow"].blocks and cfg.inputs["slow"].queue_size == 2
    assert cfg.outputs == {"cmd": "dora/default/viewer/cmd"}


@pytest.mark.parametrize(("source", "words"), [
    ("dora/timer/millis/0", "must be positive, not 0"),
    ("dora/timer/millis/-5", "must be positive, not -5"),
    ("dora/timer/hz/0", "must be positive"),
    ("dora/timer/milis/5", "did you mean 'millis'"),
    ("dora/timer/millis/x", "not a whole number"),
])
def test_ros_like_bad_timer_names_node_input_and_fix(source, words):
    with pytest.raises(NodeConfigError) as info:
        adhoc_config("x", {"t": source}, None, None, "dora", EP)
    message = str(info.value)
    assert "input 't' of node 'x'" in message and words in message and "dora/timer/" in message


@pytest.mark.parametrize(("spec", "words"), [
    ("nodeonly", "is not node/output"),
    ({"source": "a/b", "queue_size": 0}, "queue_size must be a whole number from 1 to 1000000, not 0"),
    # its ring channel, allocated at once, aborted the process (Rust's "memory allocation ... failed")
    ({"source": "a/b", "queue_size": 10**15}, "queue_size must be a whole number from 1 to 1000000"),
    ({"source": "a/b", "queue_policy": "drop_newest"}, "queue_policy must be one of drop_oldest, block"),
    (5, "neither a source nor a mapping"),
])
def test_ros_like_bad_inputs(spec, words):
    with pytest.raises(NodeConfigError, match=words):
        adhoc_config("x", {"i": spec}, None, None, "dora", EP)


# -- from_json refuses what no runner writes, naming the field -----------------------------------
def _valid() -> dict:
    return adhoc_config("n", {"i": "a/b", "t": "dora/timer/millis/10"}, ["o"], "f", "dora", EP).to_dict()


def _broken(change) -> str:
    data = _valid()
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d.pop("node"), "'node'", "is missing"),
    (lambda d: d.update(endpoint=7), "'endpoint'", "should be text, not 7"),
    (lambda d: d.update(supervised="yes"), "'supervised'", "should be true or false"),
    (lambda d: d.update(inputs=[]), "'inputs'", "should be a JSON object"),
    (lambda d: d["inputs"]["i"].update(queue_size=0), "inputs.i: field 'queue_size'", "at least 1"),
    (lambda d: d["inputs"]["i"].update(queue_size=10**15), "inputs.i: field 'queue_size'", "at most 1000000"),
    (lambda d: d["inputs"]["i"].update(queue_size="10"), "inputs.i: field 'queue_size'", "a whole number"),
    (lambda d: d["inputs"]["i"].update(queue_policy="lossy"), "inputs.i: field 'queue_policy'", "one of"),
    (lambda d: d["inputs"]["i"].pop("key"), "inputs.i: field 'key'", "is missing"),
    (lambda d: d["inputs"]["t"].update(timer_ns=-1), "inputs.t: field 'timer_ns'", "at least 1"),
    (lambda d: d["outputs"].update(o=1), "'outputs.o'", "should be a key"),
    (lambda d: d.update(readers={"o": "n2"}), "'readers.o'", "list of node ids"),
    (lambda d: d.update(operators=[{"id": "op"}]), "operators[0]: field 'python'", "is missing"),
    (lambda d: d.update(barrier_timeout=True), "'barrier_timeout'", "a number"),
    (lambda d: d.update(dataflow_uuid=5), "'dataflow_uuid'", "should be text, not 5"),
    (lambda d: d.update(restart_count=-1), "'restart_count'", "at least 0"),
    (lambda d: d.update(restart_count="2"), "'restart_count'", "a whole number"),
])
def test_from_json_names_the_bad_field(change, field, words):
    with pytest.raises(NodeConfigError) as info:
        NodeConfig.from_json(_broken(change), "DORA_ZENOH_NODE_CONFIG")
    message = str(info.value)
    assert message.startswith("DORA_ZENOH_NODE_CONFIG")
    assert field in message and words in message


@pytest.mark.parametrize("text", ["", "{", "[1]", "null"])
def test_from_json_refuses_what_is_not_a_json_object(text):
    with pytest.raises(NodeConfigError, match="DORA_ZENOH_NODE_CONFIG"):
        NodeConfig.from_json(text, "DORA_ZENOH_NODE_CONFIG")


def test_from_json_ignores_unknown_fields_and_fills_defaults():
    data = _valid()
    data["from_a_newer_runner"] = 1
    for optional in ("fresh_start", "barrier_timeout", "readers", "supervised", "restart_count"):
        data.pop(optional)
    cfg = NodeConfig.from_json(json.dumps(data))
    assert cfg.supervised and not cfg.fresh_start and cfg.barrier_timeout == 30.0 and cfg.readers == {}
    assert cfg.dataflow_uuid is None and cfg.restart_count == 0  # a node of an older runner


def test_run_identity_and_restart_count_round_trip():
    """dora-rs's ``dataflow_id()`` (one UUID per run) and ``restart_count()`` travel in the config."""
    desc = load_descriptor(ROOT / "examples" / "timer-pipeline" / "dataflow.yml")
    node = desc.nodes[0]
    cfg = node_config(desc, "flow", node, EP, dataflow_uuid="0b6d3a52-8f0e-4d55-9d7a-2a8f1c7e9b10",
                      restart_count=3)
    back = NodeConfig.from_json(cfg.to_json())
    assert back == cfg
    assert back.dataflow_uuid == "0b6d3a52-8f0e-4d55-9d7a-2a8f1c7e9b10" and back.restart_count == 3
    fresh = node_config(desc, "flow", node, EP, fresh_start=True)
    assert fresh.dataflow_uuid is None and fresh.restart_count == 0
    assert "dataflow_uuid" not in json.loads(fresh.to_json())


# -- the runner's identity and the node's place in the link plan (issue 19) ------------------
def test_runner_identity_and_links_round_trip():
    desc = load_descriptor(ROOT / "examples" / "timer-pipeline" / "dataflow.yml")
    node = next(n for n in desc.nodes if any(not i.is_timer for i in n.inputs.values()))
    runner = RunnerIdentity("box", 4242, 123456)
    cfg = node_config(desc, "flow", node, EP, fresh_start=True, runner=runner,
                      listen="tcp/127.0.0.1:7101", upstreams=["tcp/127.0.0.1:7100"])
    data = json.loads(cfg.to_json())
    assert data["runner"] == {"host": "box", "pid": 4242, "start": 123456}
    assert data["listen"] == "tcp/127.0.0.1:7101" and data["upstreams"] == ["tcp/127.0.0.1:7100"]
    back = NodeConfig.from_json(cfg.to_json())
    assert back == cfg and back.runner == runner and back.upstreams == ["tcp/127.0.0.1:7100"]


def test_a_config_without_a_plan_or_runner_says_so():
    """No plan (a Unix-socket hub, $DORA_ZENOH_LISTEN) or an older runner: the node falls back
    to gossip (``listen`` None) and to the token alone (``runner`` None)."""
    cfg = NodeConfig.from_json(json.dumps(_valid()))
    assert cfg.listen is None and cfg.upstreams == [] and cfg.runner is None
    assert "listen" not in cfg.to_dict() and "runner" not in cfg.to_dict()
    unknown_start = dict(_valid(), runner={"host": "box", "pid": 7})
    assert NodeConfig.from_json(json.dumps(unknown_start)).runner == RunnerIdentity("box", 7, None)


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d.update(runner={"host": "box"}), "runner: field 'pid'", "is missing"),
    (lambda d: d.update(runner={"host": "box", "pid": 0}), "runner: field 'pid'", "at least 1"),
    (lambda d: d.update(runner={"host": "box", "pid": 7, "start": "x"}), "runner: field 'start'", "whole number"),
    (lambda d: d.update(runner="box:7"), "runner", "should be a JSON object"),
    (lambda d: d.update(listen=7101), "'listen'", "should be text"),
    (lambda d: d.update(upstreams="tcp/127.0.0.1:7100"), "'upstreams'", "a list of text"),
])
def test_from_json_names_a_bad_runner_or_link_field(change, field, words):
    with pytest.raises(NodeConfigError) as info:
        NodeConfig.from_json(_broken(change), "DORA_ZENOH_NODE_CONFIG")
    message = str(info.value)
    assert field in message and words in message


# -- trust (docs/guarantees.md): who may hold a sender back, the run's secret, the runner's id ---
MIXED = """
nodes:
  - id: tx
    path: node.py
    outputs: [o, p]
  - id: slow
    path: node.py
    inputs:
      o: {source: tx/o, queue_policy: block}
  - id: lossy
    path: node.py
    inputs:
      o: tx/o
      p: tx/p
  - id: plot
    path: dynamic
    inputs:
      o: {source: tx/o, queue_policy: block}
"""


def _mixed(tmp_path: Path, **kwargs) -> dict[str, NodeConfig]:
    (tmp_path / "node.py").write_text("")
    (tmp_path / "dataflow.yml").write_text(MIXED)
    desc = load_descriptor(tmp_path / "dataflow.yml")
    return {n.id: node_config(desc, "flow", n, EP, **kwargs) for n in desc.nodes}


def test_only_block_readers_hold_a_sender_back_and_a_mixed_output_is_split(tmp_path):
    by_id = _mixed(tmp_path)
    tx = by_id["tx"]
    # `plot` is dynamic: it never holds tx back (nor does tx wait for it when it exits).
    assert tx.block_readers == {"o": ["slow"]}
    assert tx.split_outputs == ["o"]  # read by a block reader; `p` by drop_oldest readers only
    assert by_id["slow"].inputs["o"].key == "dora/@dz/blk/flow/tx/o"
    assert by_id["lossy"].inputs["o"].key == "dora/flow/tx/o"
    assert by_id["lossy"].inputs["p"].key == "dora/flow/tx/p"
    assert by_id["lossy"].block_readers == {} and by_id["lossy"].split_outputs == []


BLOCK_ONLY = """
nodes:
  - {id: tx, path: node.py, outputs: [o, log], send_stdout_as: log}
  - id: rx
    path: node.py
    inputs:
      o: {source: tx/o, queue_policy: block}
      log: {source: tx/log, queue_policy: block}
"""


def test_an_output_read_by_block_readers_alone_is_split_too(tmp_path):
    """Its block readers read the block key; the data key (DROP) is for everyone else, tools
    included: a paused `topic echo` on a data key that was BLOCK held the sender back (3 Dec).
    The stdout output stays on its data key: the runner publishes it, not the node."""
    (tmp_path / "node.py").write_text("")
    (tmp_path / "dataflow.yml").write_text(BLOCK_ONLY)
    desc = load_descriptor(tmp_path / "dataflow.yml")
    by_id = {n.id: node_config(desc, "flow", n, EP) for n in desc.nodes}
    assert by_id["tx"].split_outputs == ["o"]
    assert by_id["rx"].inputs["o"].key == "dora/@dz/blk/flow/tx/o"
    assert by_id["rx"].inputs["log"].key == "dora/flow/tx/log"


def test_secret_and_runner_zid_round_trip_and_are_left_out_when_unset(tmp_path):
    for cfg in _mixed(tmp_path, secret="s3cr3t", runner_zid="abc123").values():
        data = json.loads(cfg.to_json())
        assert data["secret"] == "s3cr3t" and data["runner_zid"] == "abc123"
        assert NodeConfig.from_json(cfg.to_json()) == cfg
    served = _mixed(tmp_path, runner_zid="abc123")["plot"]  # what a dynamic node is served
    assert served.secret is None and "secret" not in json.loads(served.to_json())
    assert NodeConfig.from_json(served.to_json()) == served


def test_a_config_without_block_readers_blocks_on_every_output():
    """A ROS-like node (no runner, no descriptor) does not know its readers' policies: None,
    which the node reads as "every output may be held back" (the behaviour before DROP)."""
    cfg = NodeConfig.from_json(json.dumps(_valid()))
    assert cfg.block_readers is None and cfg.split_outputs == [] and cfg.secret is None and cfg.runner_zid is None
    assert "block_readers" not in json.loads(cfg.to_json())


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d.update(block_readers={"o": "slow"}), "'block_readers.o'", "list of node ids"),
    (lambda d: d.update(block_readers=["slow"]), "'block_readers'", "a JSON object"),
    (lambda d: d.update(split_outputs="o"), "'split_outputs'", "a list of ids"),
    (lambda d: d.update(secret=5), "'secret'", "should be text"),
    (lambda d: d.update(runner_zid=["x"]), "'runner_zid'", "should be text"),
])
def test_from_json_names_a_bad_trust_field(change, field, words):
    with pytest.raises(NodeConfigError) as info:
        NodeConfig.from_json(_broken(change), "DORA_ZENOH_NODE_CONFIG")
    assert field in str(info.value) and words in str(info.value)


def test_the_start_barrier_waits_longer_in_a_dataflow_of_many_nodes(tmp_path):
    """Starting 200 node processes on a shared 2-core machine took more than the default 30 s."""
    lines = ["nodes:", "  - id: n0", "    path: source.py", "    outputs: [out]"]
    for i in range(1, 200):
        lines += [f"  - id: n{i}", "    path: reader.py", "    inputs:", "      in: n0/out"]
    path = tmp_path / "dataflow.yml"
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "source.py").write_text("")
    (tmp_path / "reader.py").write_text("")
    desc = load_descriptor(path)
    big = node_config(desc, "flow", desc.nodes[0], EP, fresh_start=True)
    small = _configs(ROOT / "examples" / "timer-pipeline" / "dataflow.yml")[0]
    assert small.barrier_timeout == 30.0
    assert big.barrier_timeout == 100.0
    assert NodeConfig.from_json(big.to_json(), "test").barrier_timeout == 100.0
