"""A sender whose Zenoh threads get no CPU for a while loses nothing it has room for.

Each link's queue holds a number of batches (``zconfig.DATA_BATCHES``); a burst that a node
flushes when it waits takes one. With Zenoh's default of 2, a relay whose Zenoh thread waited
for a CPU while its own thread re-sent bursts found no free batch, waited Zenoh's 5 ms and
dropped (docs/guarantees.md). Here the sender's Zenoh threads are stopped on purpose (ptrace
stops one thread, not the process) while the node's own thread sends.
"""
from __future__ import annotations

import time

from conftest import wait_for
from freeze import freeze_zenoh_threads, thaw

BURSTS, SIZE = 10, 20

SOURCE = f"""
    import os, time
    from dora import Node
    node = Node()
    open("src.pid", "w").write(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not os.path.exists("go") and time.monotonic() < deadline:
        node.next(timeout=0.02)
    for burst in range({BURSTS}):
        for i in range({SIZE}):
            node.send_output("out", str(burst * {SIZE} + i).encode())
        node.next(timeout=0.05)  # waits: the burst's batch is flushed, the next burst takes another
    open("sent", "w").write("")
    end = time.monotonic() + 10  # then its exit closes the sink's input (the sink ends)
    while not os.path.exists("done") and time.monotonic() < end:
        node.next(timeout=0.05)
"""

SINK = f"""
    import json
    from dora import Node
    node = Node()
    got = []
    for event in node:
        if event["type"] == "INPUT":
            got.append(int(bytes(event["value"].to_numpy(zero_copy_only=False)).decode()))
            if len(got) == {BURSTS * SIZE}:
                break
        elif event["type"] in ("INPUT_CLOSED", "STOP"):
            break
    json.dump(got, open("got.json", "w"))
    open("done", "w").write("")
"""


def test_bursts_from_a_sender_whose_zenoh_threads_are_stopped_all_arrive(flow):
    """Ten flushed bursts of 20 messages to a drop_oldest reader with room for all, while the
    sender's Zenoh threads are stopped: every message arrives once they go on, and nothing is
    reported dropped. With 2 batches per link the reader got the first two bursts and lost
    160 messages; with 16, 16 bursts arrive and a 17th is lost (one batch per burst)."""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: src
            path: src.py
            outputs: [out]
          - id: dst
            path: dst.py
            inputs:
              in: {{source: src/out, queue_size: {BURSTS * SIZE}}}
    """)
    flow.write("src.py", SOURCE)
    flow.write("dst.py", SINK)
    proc = flow.start()
    frozen: list[int] = []
    try:
        path = flow.folder / "src.pid"
        wait_for(lambda: path.exists() and path.read_text(), 30, "src to start")
        time.sleep(0.5)  # its readers are linked (Node() returned once they were subscribed)
        frozen = freeze_zenoh_threads(int(path.read_text()))
        (flow.folder / "go").write_text("")
        wait_for(lambda: (flow.folder / "sent").exists(), 60, "the bursts to be sent")
        thaw(frozen)
        frozen = []
        out, err = proc.communicate(timeout=60)
    finally:
        thaw(frozen)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert flow.result("got.json") == list(range(BURSTS * SIZE)), err
    assert "dropped" not in err and "lost" not in err, err
