"""The start gate: a node started with the dataflow leaves ``Node()`` once every node its runner
started is ready (as in dora-rs), or has ended, or is late; its timers tick only from then on."""
from __future__ import annotations

import json
import os

import zenoh
from conftest import wait_for

from dora_zenoh.wire import zconfig

FLOW = """
    nodes:
      - id: source
        path: source.py
        inputs:
          tick: dora/timer/millis/10
        outputs: [out]
      - id: sink
        path: sink.py
        inputs:
          in: source/out
      - id: other
        path: other.py
        outputs: [unused]
"""

# Sends 5 messages on its first ticks; says when Node() returned (in $OUT, else where it runs).
SOURCE = """
    import json, os, time
    from dora import Node
    node = Node()
    returned = time.time()
    sent = 0
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("out", b"x")
            sent += 1
            if sent == 5:
                break
    json.dump({"returned": returned}, open(os.path.join(os.environ.get("OUT", "."), "source.json"), "w"))
"""

SINK = """
    import json, os
    from dora import Node
    got = sum(1 for event in Node() if event["type"] == "INPUT")
    json.dump({"got": got}, open(os.path.join(os.environ.get("OUT", "."), "sink.json"), "w"))
"""

# A node unrelated to the others that takes DELAY s before it calls Node() (a model loading).
OTHER = """
    import json, os, time
    cfg = json.loads(os.environ["DORA_ZENOH_NODE_CONFIG"])
    open("runner_zid", "w").write(cfg["runner_zid"])
    time.sleep(float(os.environ.get("DELAY", "2")))
    if os.environ.get("FAIL"):
        raise SystemExit("cannot load the model")
    before = time.time()
    from dora import Node
    Node()
    json.dump({"before": before}, open(os.path.join(os.environ.get("OUT", "."), "other.json"), "w"))
"""


def _write(flow, other_env: dict[str, str] | None = None) -> None:
    text = FLOW
    if other_env:
        text += "        env:\n" + "".join(f"          {k}: \"{v}\"\n" for k, v in other_env.items())
    flow.write("dataflow.yml", text)
    flow.write("source.py", SOURCE)
    flow.write("sink.py", SINK)
    flow.write("other.py", OTHER)


def test_nodes_start_once_every_node_is_ready(flow):
    """The source's Node() returns only after `other` (which reads nothing from it and sends it
    nothing) called its own, and its timer does not tick meanwhile (no ticks dropped)."""
    _write(flow)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert flow.result("source.json")["returned"] >= flow.result("other.json")["before"]
    assert flow.result("sink.json") == {"got": 5}
    assert "dropping" not in res.stderr and "dropped" not in res.stderr, res.stderr
    assert "did not start" not in res.stderr, res.stderr


def test_a_node_that_ends_before_node_does_not_hold_the_others(flow):
    """`other` fails before it calls Node(): the gate opens at its end, not at the timeout (set
    beyond the run's own 60 s bound, so a gate that waited for it would fail the test)."""
    _write(flow, {"FAIL": "1", "DELAY": "1"})
    res = flow.run(env={**os.environ, "DORA_ZENOH_START_TIMEOUT": "300"})
    assert res.returncode != 0  # other failed
    assert "cannot load the model" in res.stderr
    assert flow.result("sink.json") == {"got": 5}
    assert "did not start" not in res.stderr, res.stderr


def test_a_late_node_is_named_and_the_others_go_on(flow):
    """`other` needs longer than DORA_ZENOH_START_TIMEOUT: the runner names it, the others start."""
    _write(flow, {"DELAY": "6"})
    res = flow.run(env={**os.environ, "DORA_ZENOH_START_TIMEOUT": "1"})
    assert res.returncode == 0, res.stderr
    # (under load, source and sink may be named too: they may take longer than 1 s to start)
    late = [line for line in res.stderr.splitlines() if "did not start (no Node() ready) within 1 s" in line]
    assert len(late) == 1 and "other" in late[0].split("did not start")[0], res.stderr
    assert flow.result("source.json")["returned"] < flow.result("other.json")["before"]
    assert flow.result("sink.json") == {"got": 5}


def test_a_forged_ready_token_opens_no_gate(flow):
    """Another Zenoh session declares the runner's ready token while `other` still loads: the
    nodes ask the runner, which does not stand by it, so they wait for `other` and say so."""
    _write(flow, {"DELAY": "8"})  # past the 3 s the nodes ask the runner before they say so
    proc = flow.start()
    session = zenoh.open(zconfig.peer_config([flow.endpoint], []))
    try:
        zid = wait_for(lambda: (flow.folder / "runner_zid").exists() and (flow.folder / "runner_zid").read_text(),
                       20, "other's start")
        token = session.liveliness().declare_token(f"dora/@dz/live/{flow.name}/ready/{zid}")
        out, err = proc.communicate(timeout=60)
        token.undeclare()
    finally:
        session.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert flow.result("source.json")["returned"] >= flow.result("other.json")["before"]
    assert f"ignored the 'ready/{zid}' token" in err, err
    assert json.loads((flow.folder / "sink.json").read_text()) == {"got": 5}
