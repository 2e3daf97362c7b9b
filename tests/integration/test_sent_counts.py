"""A sender whose end-of-stream notice never reached its supervisor is still counted.

Two machines on loopback (the coordinator with its daemon, and daemon ``b``): a sender on
the first, its ``queue_policy: block`` reader on b. The sender's notice goes out and is lost
on the way (its node drops it: as a link that closes under it, or a supervisor whose Zenoh
stalled past its lease, would), so the notice reaches nobody. Its supervisor reads the count
from the node's sent file (``wire.tally``) although the file says the notice went out, and
declares it; the reader closes its input with that count. Before (5 Dec), the marked file
was skipped, no count was declared, and the reader waited for one for good (seen once in CI,
test_outage). Real processes and sessions.
"""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from conftest import loopback_daemon, wait_for

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
