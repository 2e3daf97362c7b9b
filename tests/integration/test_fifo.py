"""``queue_policy: block`` inputs read from Zenoh FIFO channels by the node's thread
(dora_zenoh.node.fifo). Real processes, real Zenoh on loopback."""
from __future__ import annotations

import pytest

TX = """
    from dora import Node
    node = Node()
    for i in range(300):
        node.send_output("data", str(i).encode())
        if i % 50 == 49:
            node.send_output("side", str(i).encode())
    node.send_output("done", b"")
"""

RX = """
    import json, time
    from dora import Node
    node = Node()
    seen, ticks, closed = [], 0, []
    for event in node:
        if event["type"] == "INPUT_CLOSED":
            closed.append(event["id"])
        if event["type"] != "INPUT":
            continue
        if event["id"] == "tick":
            ticks += 1
            continue
        seen.append([event["id"], bytes(event["value"].to_numpy(zero_copy_only=False)).decode()])
        if len(seen) < 40:
            time.sleep(0.003)  # behind: the FIFO fills and holds the sender back
    wake = node._wake
    json.dump({"seen": seen, "ticks": ticks, "closed": sorted(closed), "fifo_taken": wake.fifo_taken,
               "data_received": node._inputs["data"].received, "dropped": node._inputs["data"].dropped},
              open("result.json", "w"))
"""


@pytest.mark.parametrize("side", ["drop_oldest", "block"], ids=["one-fifo", "two-fifos"])
def test_a_block_input_comes_from_its_fifo_in_order_and_before_later_messages_of_other_inputs(flow, side):
    """Every message of a block input (queue_size 5, reader behind) is taken by the node's thread
    from the input's FIFO channel - none through a Python callback on Zenoh's thread - in order,
    none lost; a timer and a drop_oldest input keep waking the node meanwhile; and the sender's
    messages on a drop_oldest output, sent after a block message, come after it. With two block
    inputs the node sleeps in the ring, woken by the FIFOs' bells (dora_zenoh.node.fifo)."""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: tx
            path: tx.py
            outputs: [data, side, done]
          - id: rx
            path: rx.py
            inputs:
              data: {{source: tx/data, queue_size: 5, queue_policy: block}}
              side: {{source: tx/side, queue_size: 100, queue_policy: {side}}}
              done: tx/done
              tick: dora/timer/millis/10
    """)
    flow.write("tx.py", TX)
    flow.write("rx.py", RX)
    res = flow.run("--stop-after", "60s")
    assert res.returncode == 0, res.stderr
    out = flow.result()
    data = [int(v) for i, v in out["seen"] if i == "data"]
    assert data == list(range(300)), data[:20]
    fifo_messages = 300 + (6 if side == "block" else 0)
    assert out["fifo_taken"] == fifo_messages and out["data_received"] == 300 and out["dropped"] == 0, out
    position = {(i, v): n for n, (i, v) in enumerate(out["seen"])}
    assert [v for i, v in out["seen"] if i == "side"] == [str(i) for i in range(49, 300, 50)]
    if side == "drop_oldest":  # across two block inputs only each input's own order holds
        for i in range(49, 300, 50):  # side i was sent right after data i
            assert position[("side", str(i))] > position[("data", str(i))], out["seen"]
    assert position[("done", "")] > position[("data", "299")]
    assert "data" in out["closed"]
    assert out["ticks"] >= 1


def test_a_node_reading_only_block_inputs_sleeps_in_its_fifo_without_a_watcher(flow):
    """A node with no drop_oldest input has nothing in its ring that Zenoh puts there: every
    item comes from its own timer, alarm and callbacks, which kick the FIFO it sleeps in
    themselves, so no watcher subscriber is declared per sleep (dora_zenoh.node.inbox). While its
    sender pauses, a timer tick and a ``next(timeout)`` must still wake it from the FIFO, and the
    input's close and STOP must end its loop."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [data]
          - id: rx
            path: rx.py
            inputs:
              data: {source: tx/data, queue_size: 5, queue_policy: block}
              tick: dora/timer/millis/200
    """)
    flow.write("tx.py", """
        import time
        from dora import Node
        node = Node()
        for i in range(200):
            node.send_output("data", str(i).encode())
            if i == 99:
                time.sleep(1.0)  # the reader sleeps in its FIFO meanwhile
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        node = Node()
        data, kinds = [], {}
        while (event := node.next(timeout=0.05)) is not None:
            kind = event["type"] if event["type"] != "INPUT" else event["id"]
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "data":
                data.append(int(bytes(event["value"].to_numpy(zero_copy_only=False)).decode()))
        wake = node._wake
        json.dump({"data": data, "kinds": kinds, "watches": wake.watches, "sleeps": wake.fifo_sleeps,
                   "fifo_taken": wake.fifo_taken}, open("result.json", "w"))
    """)
    res = flow.run("--stop-after", "60s")
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["data"] == list(range(200)) and out["fifo_taken"] == 200, out
    assert out["sleeps"] > 0 and out["watches"] == 0, out
    kinds = out["kinds"]
    assert kinds.get("tick", 0) >= 1 and kinds.get("ERROR", 0) >= 1, kinds  # woke from the FIFO
    assert kinds.get("INPUT_CLOSED", 0) >= 1 and kinds.get("STOP", 0) == 1, kinds
