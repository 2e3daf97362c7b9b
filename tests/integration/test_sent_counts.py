"""A sender whose end-of-stream notice never reached its supervisor is still counted.

Two machines on loopback (the coordinator with its daemon, and daemon ``b``): a sender on
the first, its ``queue_policy: block`` reader on b. The sender's notice goes out and is lost
on the way (its node drops it: as a link that closes under it, or a supervisor whose Zenoh
stalled past its lease, would), so the notice reaches nobody. Its supervisor reads the count
from the node's sent file (``wire.tally``) although the file says the notice went out, and
declares it; the reader closes its input with that count. Before (5 Dec), the marked file
was skipped, no count was declared, and the reader waited for one for good (seen once in CI,
test_outage). Also: a sender that failed before ``Node()`` counts as 0, and a reader that ends
while a count is still awaited says so. Real processes and sessions.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zenoh
from conftest import loopback_daemon, wait_for

from dora_zenoh.wire import zconfig
from dora_zenoh.wire.contract import InputConfig, NodeConfig

pytestmark = pytest.mark.timeout(180)

SENT = 30


LOSES_ITS_NOTICE = f"""
    from dora import Node
    node = Node()
    node._put_eos = lambda notice: None  # its notice is lost on the way (to everyone)
    i = 0
    for event in node:
        if event["type"] == "INPUT":
            i += 1
            node.send_output("n", i.to_bytes(8, "little"))
            if i == {SENT}:
                break
"""
FAILS_BEFORE_NODE = """
    import sys
    sys.exit("a bad argument")  # before Node(): no notice, no sent file
"""


def _flow(folder: Path, src: str) -> Path:
    (folder / "src.py").write_text(textwrap.dedent(src))
    (folder / "sink.py").write_text(textwrap.dedent("""
        from dora import Node
        for event in Node():
            with open("events.txt", "a") as f:
                f.write(f"{event['type']} {event.get('id')}\\n")
    """))
    (folder / ".dora-zenoh-ignore").write_text("*.log\n*.txt\ncache/\n")
    yml = folder / "flow.yml"
    yml.write_text(textwrap.dedent("""
        nodes:
          - id: src
            path: src.py
            inputs: {tick: dora/timer/millis/20}
            outputs: [n]
            env: {DORA_ZENOH_EXIT_TIMEOUT: "1"}  # (no reader will confirm a notice it never got)
          - id: sink
            path: sink.py
            deploy: {machine: b}
            inputs:
              n: {source: src/n, queue_policy: block}
    """))
    return yml


@pytest.mark.parametrize("src, sent", [(LOSES_ITS_NOTICE, SENT), (FAILS_BEFORE_NODE, 0)],
                         ids=["notice-lost", "failed-before-node"])
def test_a_sender_whose_notice_never_came_is_counted(coord, tmp_path, flow_name, src, sent):
    """Counted from its sent file (notice-lost), or as 0 when it failed before ``Node()``: its
    reader waited for a count that never came, saying so (the bench's ping, given no sizes)."""
    yml = _flow(tmp_path, src)
    with loopback_daemon(coord, tmp_path, "b"):
        res = coord("start", str(yml), "--name", flow_name, "--detach", cwd=tmp_path)
        assert res.returncode == 0 or not sent, res.stdout + res.stderr
        try:
            events = tmp_path / "events.txt"  # (b runs it here: the same path exists on b)
            wait_for(lambda: events.exists() and "INPUT_CLOSED n" in events.read_text(), 60,
                     "the sink's input to close")
            assert events.read_text().count("INPUT n\n") == sent
            time.sleep(0.5)  # (a count that came late would be logged now: none must be missing)
            logs = coord("logs", flow_name, "sink")
            assert logs.returncode == 0, logs.stderr
            assert "has not reached this node" not in logs.stdout, logs.stdout
            assert "src/n that never arrived" not in logs.stdout, logs.stdout  # all came: none lost
            if sent:
                out = coord("logs", flow_name, "src")
                assert "Traceback" not in out.stdout, out.stdout
        finally:
            coord("stop", flow_name, "--grace", "2s")


def test_a_count_that_never_came_is_said_when_the_reader_ends(tmp_path: Path) -> None:
    """A reader whose input closed while its source's count was late, and that ended before
    the count came (its source's machine never said: a machine lost with its supervisor),
    said nothing about that input at all (the CI run of 5 Dec). It now says what arrived and
    that whether any were lost is unknown. The late count is put where the input's close
    leaves it (Node._late_counts): no supervisor here will ever send it."""
    endpoint = zconfig.free_tcp_endpoint()
    hub = zenoh.open(zconfig.peer_config([], [endpoint]))
    cfg = NodeConfig("latecount", "rx", "dora", endpoint, supervised=False, inputs={"in": InputConfig(
        queue_size=1, queue_policy="block", key="dora/latecount/tx/out", source_node="tx", source_output="out",
        restartable=True, recover=True)})
    (tmp_path / "rx.py").write_text(textwrap.dedent("""
        from dora_zenoh import Node
        node = Node()
        q = node._inputs["in"]
        q.received = 3
        node._late_counts[("tx", "out")] = q
        node.close()
    """))
    try:
        res = subprocess.run([sys.executable, "rx.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "DORA_ZENOH_NODE_CONFIG": cfg.to_json()})
    finally:
        hub.close()
    assert res.returncode == 0, res.stderr
    assert ("input 'in': how many messages tx/out sent never reached this node (its machine's supervisor did "
            "not say before this node ended); 3 arrived, and whether any were lost is unknown") in res.stderr, res.stderr
