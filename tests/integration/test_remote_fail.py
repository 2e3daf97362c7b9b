"""A node that fails for good: its readers on another machine see their input close (needs root)."""
from __future__ import annotations

import json
import textwrap

import pytest
from test_machines import Machines, machines, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def test_a_failed_sender_closes_its_remote_readers_input(machines: Machines) -> None:  # noqa: F811
    net = machines
    net.start_coordinator()
    net.start_daemon("a")
    net.start_daemon("b")
    (net.tmp / "tx.py").write_text(textwrap.dedent("""
        import sys
        from dora import Node
        node = Node()
        n = 0
        for event in node:
            if event["type"] == "INPUT":
                n += 1
                node.send_output("out", n.to_bytes(8, "little"))
                if n == 10:
                    sys.exit(3)
    """))
    (net.tmp / "rx.py").write_text(textwrap.dedent("""
        import json, os
        from dora import Node
        events = []
        for event in Node():
            events.append(event["type"] if event["type"] != "INPUT" else "INPUT")
            if event["type"] == "INPUT_CLOSED":
                json.dump(events, open(os.environ["OUT"], "w"))
        json.dump(events, open(os.environ["OUT"], "w"))
    """))
    yaml = net.tmp / "dataflow.yml"
    yaml.write_text(textwrap.dedent("""
        nodes:
          - id: tx
            path: tx.py
            deploy: {machine: a}
            inputs: {tick: dora/timer/millis/50}
            outputs: [out]
          - id: rx
            path: rx.py
            deploy: {machine: b}
            inputs: {data: {source: tx/out, queue_policy: block}}
            env: {OUT: "%s"}
    """ % (net.tmp / "rx-events.json")))
    # the daemons' logs change while a start ships the folder: b may run from a copy (docs/machines.md)
    (net.tmp / ".dora-zenoh-ignore").write_text("*.log\n*.json\n/state/\n")
    out = net.cli("start", str(yaml), "--name", "fail", "--detach")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: (net.tmp / "rx-events.json").exists(), 60, "rx's input to close after tx failed")
    events = json.loads((net.tmp / "rx-events.json").read_text())
    assert events.count("INPUT") == 10 and "INPUT_CLOSED" in events, events
