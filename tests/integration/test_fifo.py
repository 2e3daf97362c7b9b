"""``queue_policy: block`` inputs read from Zenoh FIFO channels by the node's thread
(dora_zenoh.node.fifo). Real processes, real Zenoh on loopback."""
from __future__ import annotations

import pytest

TX = """
    from dora import Node
    node = Node()
    for i in range(300):
        node.send_output("data", str(i).encode(), {"i": i} if i % 7 == 0 else None)
        if i % 50 == 49:
            node.send_output("side", str(i).encode())
    node.send_output("done", b"")
"""

RX = """
    import json, time
    from dora import Node
    node = Node()
    seen, ticks, closed, meta = [], 0, [], []
    for event in node:
        if event["type"] == "INPUT_CLOSED":
            closed.append(event["id"])
        if event["type"] != "INPUT":
            continue
        if event["id"] == "tick":
            ticks += 1
            continue
        seen.append([event["id"], bytes(event["value"].to_numpy(zero_copy_only=False)).decode()])
        if event["id"] == "data" and event["metadata"].get("i") is not None:
            meta.append(event["metadata"]["i"])
        if len(seen) < 40:
            time.sleep(0.003)  # behind: the FIFO fills and holds the sender back
    wake = node._wake
    json.dump({"seen": seen, "ticks": ticks, "closed": sorted(closed), "fifo_taken": wake.fifo_taken,
               "handed_out": wake.handed_out, "meta": meta,
               "data_received": node._inputs["data"].received, "dropped": node._inputs["data"].dropped},
              open("result.json", "w"))
"""


@pytest.mark.parametrize("side", ["drop_oldest", "block"], ids=["one-fifo", "two-fifos"])
def test_a_block_input_comes_from_its_fifo_in_order_and_before_later_messages_of_other_inputs(flow, side):
    """Every message of a block input (queue_size 5, reader behind) is taken by the node's thread
    from the input's FIFO channel - none through a Python callback on Zenoh's thread - in order,
    none lost; a timer and a drop_oldest input keep waking the node meanwhile; and the sender's
    messages on a drop_oldest output, sent after a block message, come after it. With two block
    inputs the node sleeps in the ring, woken by the FIFOs' bells (dora_zenoh.node.fifo). With
    one, beside the primary input, its messages are handed out as the inbox takes them
    (``Inbox._one_get``), with their metadata, whenever the ring is empty."""
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
              tick: dora/timer/millis/100
    """)
    # (the tick every 100 ms, not 10: each tick in the ring sends the few block messages taken
    # with it the general way; a CI run so loaded that one came with nearly every message handed
    # out none at all, 5 Dec)
    flow.write("tx.py", TX)
    flow.write("rx.py", RX)
    res = flow.run("--stop-after", "60s")
    assert res.returncode == 0, res.stderr
    out = flow.result()
    data = [int(v) for i, v in out["seen"] if i == "data"]
    assert data == list(range(300)), data[:20]
    fifo_messages = 300 + (6 if side == "block" else 0)
    assert out["fifo_taken"] == fifo_messages and out["data_received"] == 300 and out["dropped"] == 0, out
    assert out["meta"] == list(range(0, 300, 7)), out["meta"]
    if side == "drop_oldest":  # handed out straight from the FIFO (the first 40 at least: rx is behind)
        assert out["handed_out"] >= 40, out["handed_out"]
    else:  # two FIFOs: each message is queued and served by its token
        assert out["handed_out"] == 0, out["handed_out"]
    position = {(i, v): n for n, (i, v) in enumerate(out["seen"])}
    assert [v for i, v in out["seen"] if i == "side"] == [str(i) for i in range(49, 300, 50)]
    if side == "drop_oldest":  # across two block inputs only each input's own order holds
        for i in range(49, 300, 50):  # side i was sent right after data i
            assert position[("side", str(i))] > position[("data", str(i))], out["seen"]
    assert position[("done", "")] > position[("data", "299")]
    assert "data" in out["closed"]
    assert out["ticks"] >= 1


def test_a_flooded_block_input_never_keeps_the_primary_input_waiting(flow):
    """A node whose one block input is flooded (it reads slower than its sender sends, so the
    FIFO is never empty) still gets its ``drop_oldest`` input's messages while the flood lasts:
    the inbox looks at the ring before every 8th message it hands out from the FIFO at least
    (``Inbox._one_get``, ``RING_LOOK_EVERY``). Without that look the side messages wait for the
    flood's end, and the ring keeps only the newest few of them."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [data]
          - id: side
            path: side.py
            inputs: {tick: dora/timer/millis/10}
            outputs: [n]
          - id: rx
            path: rx.py
            inputs:
              side: {source: side/n, queue_size: 4}
              data: {source: tx/data, queue_size: 10, queue_policy: block}
    """)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        for i in range(4000):
            node.send_output("data", i.to_bytes(4, "little"))
    """)
    flow.write("side.py", """
        from dora import Node
        node = Node()
        for i, event in enumerate(e for e in node if e["type"] == "INPUT"):
            node.send_output("n", i.to_bytes(4, "little"))
            if i == 500:  # 5 s: past the flood, however slow the machine
                break
    """)
    flow.write("rx.py", """
        import json, time
        from dora import Node
        node = Node()
        order, data = [], 0
        for event in node:
            if event["type"] == "INPUT_CLOSED" and event["id"] == "data":
                break
            if event["type"] != "INPUT":
                continue
            if event["id"] == "data":
                data += 1
                time.sleep(0.0003)  # slower than tx: its FIFO stays full until tx is done
            order.append(event["id"])
        json.dump({"order": order, "data": data, "handed_out": node._wake.handed_out}, open("result.json", "w"))
    """)
    res = flow.run("--stop-after", "60s")
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["data"] == 4000 and out["handed_out"] > 1000, (out["data"], out["handed_out"])
    order = out["order"]
    last_data = len(order) - 1 - order[::-1].index("data")
    during = order[:last_data].count("side")
    # the flood lasts 4,000 x 0.3 ms = 1.2 s at least: ~120 side messages; the ring holds 4
    assert during >= 30, f"only {during} side message(s) during the flood"


def test_a_quiet_primary_input_keeps_one_watcher_and_still_wakes_a_node_asleep_in_its_fifo(flow):
    """A node with one block input and a drop_oldest one sleeps in its FIFO; the drop_oldest
    input's messages wake it through a watcher on the ring's key. While that input is quiet one
    watcher is kept from sleep to sleep (declaring one per sleep cost ~10 µs a message); once
    messages come at every sleep, a watcher is declared per sleep again (one kept would run
    Python on Zenoh's thread for every one of them). Either way a side message wakes the node
    asleep in its FIFO: the sender waits for its echo before it sends the next block message, so
    a side message that does not wake the node is echoed only after a 5 s wait ("late")."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            inputs: {ack: rx/ack}
            outputs: [data, side]
          - id: rx
            path: rx.py
            inputs:
              side: {source: tx/side, queue_size: 10}
              data: {source: tx/data, queue_size: 10, queue_policy: block}
            outputs: [ack]
    """)
    flow.write("tx.py", """
        import json, time
        from dora import Node
        node = Node()
        late = []
        for i in range(200):
            node.send_output("data", str(i).encode())
            if i % 50 == 25 or i >= 100:  # quiet, then at every message
                node.send_output("side", str(i).encode())
                event = node.next(timeout=5.0)
                if event is None or event["type"] != "INPUT":
                    late.append(i)
            time.sleep(0.005)
        json.dump(late, open("late.json", "w"))
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        node = Node()
        seen = []
        for event in node:
            if event["type"] == "INPUT":
                seen.append([event["id"], bytes(event["value"].to_numpy(zero_copy_only=False)).decode()])
                if event["id"] == "side":
                    node.send_output("ack", b"")
        wake = node._wake
        json.dump({"seen": seen, "watches": wake.watches, "sleeps": wake.fifo_sleeps}, open("result.json", "w"))
    """)
    res = flow.run("--stop-after", "60s")
    assert res.returncode == 0, res.stderr
    assert flow.result("late.json") == []
    out = flow.result()
    sides = [i for i in range(200) if i % 50 == 25 or i >= 100]
    expected = []
    for i in range(200):
        expected.append(["data", str(i)])
        if i in sides:
            expected.append(["side", str(i)])
    assert out["seen"] == expected, [x for x, y in zip(out["seen"], expected, strict=False) if x != y][:5]
    # the first 100 sleeps: a kept watcher (a few declared); the last 100: one per sleep
    assert out["sleeps"] >= 150, out
    assert 80 <= out["watches"] <= out["sleeps"] - 60, out


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


def test_a_lone_block_input_is_handed_out_as_it_comes_with_both_apis(flow):
    """A node whose one wait is one block input gets its messages as the inbox takes them from
    the FIFO, with no queueing and taking back (``Inbox._one_get``): with the right input id,
    value and metadata on today's API, as (id, bytes) on the 2022 one, in order, none lost, and
    INPUT_CLOSED after the last one; a value forwarded on arrives unchanged. (``rx`` may take
    them all while it waits for ``last`` to start: ``last`` and ``old`` have no such wait.)"""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [data]
          - id: rx
            path: rx.py
            inputs:
              data: {source: tx/data, queue_size: 3, queue_policy: block}
            outputs: [echo]
          - id: old
            path: old.py
            inputs:
              data: {source: tx/data, queue_size: 3, queue_policy: block}
          - id: last
            path: last.py
            inputs:
              echo: {source: rx/echo, queue_policy: block}
    """)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        for i in range(200):
            node.send_output("data", str(i).encode(), {"i": i} if i % 7 == 0 else None)
    """)
    flow.write("rx.py", """
        import json, time
        from dora import Node
        node = Node()
        seen, meta, kinds = [], [], []
        for event in node:
            kinds.append(event["type"] if event["type"] != "INPUT" else event["id"])
            if event["type"] != "INPUT":
                continue
            value = event["value"]
            seen.append(int(bytes(value.to_numpy(zero_copy_only=False)).decode()))
            if event["metadata"].get("i") is not None:
                meta.append(event["metadata"]["i"])
            node.send_output("echo", value)
            if len(seen) < 20:
                time.sleep(0.003)  # behind: the FIFO fills and holds the sender back
        wake = node._wake
        json.dump({"seen": seen, "meta": meta, "kinds": [kinds[0]] + kinds[-2:], "handed_out": wake.handed_out,
                   "fifo_taken": wake.fifo_taken, "dropped": node._inputs["data"].dropped},
                  open("result.json", "w"))
    """)
    flow.write("old.py", """
        import json
        from dora import Node
        got = [[input_id, value.decode()] for input_id, value in Node()]
        json.dump(got, open("old.json", "w"))
    """)
    flow.write("last.py", """
        import json
        from dora import Node
        node = Node()
        got = [bytes(e["value"].to_numpy(zero_copy_only=False)).decode() for e in node if e["type"] == "INPUT"]
        json.dump({"got": got, "handed_out": node._wake.handed_out, "dropped": node._inputs["echo"].dropped}, open("last.json", "w"))
    """)
    res = flow.run("--stop-after", "60s")
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["seen"] == list(range(200)) and out["meta"] == list(range(0, 200, 7)), out
    assert out["dropped"] == 0 and out["fifo_taken"] == 200, out
    assert out["kinds"] == ["data", "INPUT_CLOSED", "STOP"], out["kinds"]
    assert flow.result("old.json") == [["data", str(i)] for i in range(200)]
    last = flow.result("last.json")
    assert last["got"] == [str(i) for i in range(200)] and last["handed_out"] >= 1, last


@pytest.mark.parametrize("fifo", ["1", "0"], ids=["fifo", "callback"])
def test_a_node_waiting_for_a_late_reader_keeps_taking_its_block_input(flow, fifo):
    """``Node()`` waits for the readers of its outputs (the start barrier) while its own source
    may already send. A block input's FIFO that filled meanwhile could stop the node's Zenoh
    session reading its other links, so a reader's token or subscription came late or never:
    ``rx`` of the test above hung in ``Node()`` and its source's exit timed out (195 of 200
    counted lost), or ``last`` missed rx's first messages, in 2 to 5 runs of 6. Now the waiting
    thread keeps taking its FIFO into the input's queue (``Inbox.drain_fifos``), and a block
    input fed by a callback (``DORA_ZENOH_BLOCK_FIFO=0``; it waits on Zenoh's thread the same
    way) takes more than its queue_size meanwhile (``InputQueue.early_room``): here a reader that
    starts 3 s late, and every message arrives, in order, taken while ``Node()`` waited.

    Nodes of one runner start together (its start gate), so the source here is one the gate does
    not hold: a restarted one (as a source on another machine, or a dynamic one, would be)."""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: tx
            path: tx.py
            outputs: [data]
            restart_policy: on-failure
            restart_delay: 0.1
          - id: rx
            path: rx.py
            inputs:
              data: {{source: tx/data, queue_size: 2, queue_policy: block}}
            outputs: [echo]
            env: {{DORA_ZENOH_BLOCK_FIFO: "{fifo}"}}
          - id: late
            path: late.py
            inputs:
              echo: {{source: rx/echo, queue_policy: block}}
    """)
    flow.write("tx.py", """
        import json, os, sys
        if json.loads(os.environ["DORA_ZENOH_NODE_CONFIG"])["restart_count"] == 0:
            sys.exit(3)  # fails before Node() once: its restart sends while rx's Node() still waits
        from dora import Node
        node = Node()
        for i in range(100):
            node.send_output("data", str(i).encode())
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        node = Node()
        # taken while Node() waited for late
        early = {"drained": node._wake.drained, "queued": len(node._inputs["data"].items)}
        seen = []
        for event in node:
            if event["type"] == "INPUT":
                seen.append(int(bytes(event["value"].to_numpy(zero_copy_only=False)).decode()))
                node.send_output("echo", b"")
        json.dump({"seen": seen, **early, "dropped": node._inputs["data"].dropped,
                   "room_left": node._inputs["data"].early_room}, open("result.json", "w"))
    """)
    flow.write("late.py", """
        import time
        time.sleep(3.0)  # starts late: rx's Node() waits for it
        from dora import Node
        for _ in Node():
            pass
    """)
    res = flow.run("--stop-after", "60s")
    assert res.returncode == 0, res.stderr
    assert "gave up waiting" not in res.stderr and "exiting after waiting" not in res.stderr, res.stderr
    out = flow.result()
    assert out["seen"] == list(range(100)) and out["dropped"] == 0 and out["room_left"] == 0, out
    assert (out["drained"] > 0) if fifo == "1" else (out["queued"] > 2), out


def test_a_wake_up_that_lands_as_the_thread_goes_to_sleep_in_its_fifo_is_not_lost():
    """A node asleep in its one FIFO is woken for a token (STOP, a timer, another input) by a
    kick in that FIFO, sent once the thread has said it sleeps there. A ringer that lands just
    after the thread's last look at the ring left a kick that the thread's look at the FIFO then
    swallowed as a stale one: it slept on, that token unserved, until the next block message
    (none, for a node whose source has stopped). Here the token is put at exactly that point:
    ``get()`` must return it."""
    import threading

    import zenoh

    from dora_zenoh.node.fifo import FifoInput
    from dora_zenoh.node.inbox import Inbox
    from dora_zenoh.node.inputs import InputQueue
    from dora_zenoh.wire import zconfig

    with zenoh.open(zconfig.peer_config(connect=[], listen=[])) as session:
        inbox = Inbox(session, "dora/fifowake/@dz/ring", 64, None)
        q = InputQueue("data", 2, True, inbox, "src", "out")
        inbox.add_fifo(FifoInput(session, "dora/fifowake/src/out", q))
        look, rang = inbox._take_ring, []

        def look_then_ring() -> bool:  # the ringer lands right after the thread's look at the ring
            found = look()
            if not rang:
                rang.append(True)
                inbox.put("token")
            return found

        inbox._take_ring = look_then_ring  # type: ignore[method-assign]
        got: list[object] = []
        thread = threading.Thread(target=lambda: got.append(inbox.get()), daemon=True)
        thread.start()
        thread.join(5)
        asleep = thread.is_alive()
        inbox.close()
    thread.join(5)  # the closed session ends a thread still asleep
    assert rang, "the thread never went to sleep in its FIFO"
    assert not asleep and got == ["token"], f"the thread slept on through the wake-up (got {got})"
