"""The node's wait point (dora_zenoh.node.inbox): one Zenoh ring channel for the primary input,
markers for everything else. Real processes, real Zenoh on loopback."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import zenoh

from dora_zenoh.wire import zconfig

SENDER = """
    import os, time
    from dora import Node
    node = Node()
    if os.environ.get("WAIT_FOR_GO"):  # until the test's plain subscriber is in place
        deadline = time.monotonic() + 30
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # and known to this session
    for i in range(300):
        node.send_output("data", str(i).encode())
        if i % 50 == 0:
            node.send_output("side", b"s%d" % i)
    node.send_output("done", b"")
"""

QUIET = """
    import os, time
    from dora import Node
    node = Node()
    end = time.monotonic() + float(os.environ.get("QUIET_FOR", "60"))
    until = os.environ.get("QUIET_UNTIL")  # or until this file exists (its reader is done)
    while time.monotonic() < end:  # a source that never sends, and ends at STOP (not killed at the grace's end)
        event = node.next(timeout=max(0.01, min(0.1, end - time.monotonic())))
        if event is None or event["type"] == "STOP" or (until and os.path.exists(until)):
            break
"""

RECEIVER = """
    import json, os, time
    from dora import Node
    node = Node()
    time.sleep(0.5)  # everything queues up before the first next()
    seen = []
    for event in node:
        if event["type"] == "INPUT":
            seen.append([event["id"], bytes(event["value"].to_numpy(zero_copy_only=False)).decode()])
            if event["id"] == "done":
                break
    json.dump(seen, open(os.environ["OUT"], "w"))
"""


def let_senders_go(session: zenoh.Session, flow) -> None:
    """Once the test's subscriptions have reached the nodes, tell senders that wait for it
    (a `go` file) to start."""
    assert zconfig.wait_for_peers(session, 20)
    time.sleep(0.5)
    (flow.folder / "go").write_text("")


def test_order_across_inputs_is_arrival_order(flow):
    """Whichever input is the primary one, a node sees one sender's messages in the order
    they were sent: the `done` it sends last never overtakes its data."""
    flow.write("dataflow.yml", """
        nodes:
          - id: sender
            path: sender.py
            outputs: [data, side, done]
          - id: data_first
            path: receiver.py
            env: {OUT: data_first.json}
            inputs:
              data: {source: sender/data, queue_size: 1000}
              side: sender/side
              done: sender/done
              tick: dora/timer/millis/7
          - id: done_first
            path: receiver.py
            env: {OUT: done_first.json}
            inputs:
              done: sender/done
              data: {source: sender/data, queue_size: 1000}
              side: sender/side
    """)
    flow.write("sender.py", SENDER)
    flow.write("receiver.py", RECEIVER)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    expected = []
    for i in range(300):
        expected.append(["data", str(i)])
        if i % 50 == 0:
            expected.append(["side", f"s{i}"])
    expected.append(["done", ""])
    for name in ("data_first", "done_first"):
        seen = flow.result(f"{name}.json")
        data = [e for e in seen if e[0] != "tick"]
        assert data == expected, name


def test_wakeups_never_reach_other_processes(flow):
    """Markers (timers, other inputs, STOP) are session-local: a plain Zenoh subscriber on
    `dora/**` sees only the nodes' own messages, all with their attachment."""
    flow.write("dataflow.yml", """
        nodes:
          - id: sender
            path: sender.py
            env: {WAIT_FOR_GO: "1"}
            outputs: [data, side, done]
          - id: receiver
            path: receiver.py
            env: {OUT: result.json}
            inputs:
              data: {source: sender/data, queue_size: 1000}
              side: sender/side
              done: sender/done
              tick: dora/timer/millis/5
    """)
    flow.write("sender.py", SENDER)
    flow.write("receiver.py", RECEIVER)
    proc = flow.start()
    kinds, atts = set(), []
    try:
        with zenoh.open(zconfig.peer_config([flow.endpoint], [])) as session:
            sub = session.declare_subscriber("dora/**", zenoh.handlers.FifoChannel(10000))
            let_senders_go(session, flow)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                sample = sub.try_recv()
                if sample is None:
                    time.sleep(0.01)
                    continue
                kinds.add(str(sample.kind))
                atts.append(sample.attachment.to_bytes() if sample.attachment is not None else None)
    finally:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(atts) >= 100, (out, err)  # it listened while the nodes ran (all 307, unless under load)  # everything the sender sent: data, side, done
    assert kinds == {str(zenoh.SampleKind.PUT)}
    assert all(a is not None and a.startswith(b'{"seq":') for a in atts)


def test_next_timeout_returns_the_timeout_error_then_the_message(flow):
    """``next(timeout)`` returns dora-rs's ERROR event "Receiver timed out" when nothing came,
    as often as asked, also when a shorter timeout follows a longer one, and the message once it comes."""
    flow.write("dataflow.yml", """
        nodes:
          - id: late
            path: late.py
            outputs: [data]
          - id: waiter
            path: waiter.py
            inputs:
              data: late/data
    """)
    flow.write("late.py", """
        import time
        from dora import Node
        node = Node()
        time.sleep(2.0)
        node.send_output("data", b"finally")
    """)
    flow.write("waiter.py", """
        import json, time
        from dora import Node
        node = Node()
        nones, waited = 0, []
        timed_out = lambda e: e["type"] == "ERROR" and e["error"].endswith("Receiver timed out")  # dora-rs's
        for timeout in (0.3, 0.05, 0.0, 0.1):
            t0 = time.monotonic()
            assert timed_out(node.next(timeout=timeout))
            waited.append([timeout, time.monotonic() - t0])
            nones += 1
        while True:
            event = node.next(timeout=0.1)
            if timed_out(event):
                nones += 1
                continue
            break
        json.dump({"nones": nones, "waited": waited, "type": event["type"],
                   "value": bytes(event["value"].to_numpy()).decode()}, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["type"] == "INPUT" and out["value"] == "finally"
    assert out["nones"] > 4
    assert all(elapsed >= timeout for timeout, elapsed in out["waited"])  # never returns early


@pytest.mark.parametrize("source", ["late/data", None], ids=["ring", "on-timers"])
def test_a_timeout_of_centuries_is_no_timeout_and_nan_is_refused(flow, source):
    """next(timeout=1e12) or math.inf waits without a deadline (it overflowed the alarm thread's wait:
    "OverflowError: timestamp out of range" and a traceback, the node's deadlines dead after it), and
    so does a timer of 3 billion years (the timer thread's wait overflowed the same way);
    next(timeout=nan) raises ValueError naming it."""
    data = f"\n              data: {source}" if source else ""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: late
            path: late.py
            outputs: [data]
          - id: waiter
            path: waiter.py
            inputs:
              slow: dora/timer/secs/99999999999999{data}
    """)
    flow.write("late.py", """
        import time
        from dora import Node
        node = Node()
        time.sleep(1.0)
        node.send_output("data", b"late")
        for _ in node:  # until the run's stop
            pass
    """)
    flow.write("waiter.py", """
        import json, math
        from dora import Node
        node = Node()
        try:
            node.next(timeout=float("nan"))
            nan = "no error"
        except ValueError as exc:
            nan = str(exc)
        first = node.next(timeout=1e12)   # the message (ring), or STOP (on timers: the run's stop)
        second = node.next(timeout=math.inf)
        json.dump({"nan": nan, "events": [e and e["type"] for e in (first, second)]}, open("result.json", "w"))
    """)
    res = flow.run("--stop-after", "4s")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    out = flow.result()
    assert "nan" in out["nan"] and "number of seconds" in out["nan"]
    if source == "late/data":  # then, at the run's stop, its source's end or STOP itself
        assert out["events"][0] == "INPUT" and out["events"][1] in ("INPUT_CLOSED", "STOP"), out
    else:
        assert out["events"] == ["STOP", None]


@pytest.mark.parametrize(("waiting", "source"), [(0.5, "{source: quiet/data, queue_policy: drop_oldest}"),
                                                 (2.0, "{source: quiet/data, queue_policy: drop_oldest}"),
                                                 (0.5, "{source: quiet/data, queue_policy: block}"),
                                                 (0.5, "dora/timer/secs/600")],
                         ids=["in-recv", "dozing", "in-fifo", "on-timers"])
def test_ctrl_c_interrupts_a_node_waiting_for_input(flow, waiting, source):
    """A node run by hand and blocked in Zenoh's recv() still stops on Ctrl-C (zenoh-python
    looks at Python's signals while it waits), and so does one that dozes (on a Python lock);
    with a block input, the first waits in that input's FIFO channel (dora_zenoh.node.fifo);
    on timers only, on its lock until the next tick (dora_zenoh.node.lockbox)."""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: quiet
            path: quiet.py
            outputs: [data]
          - id: viewer
            path: dynamic
            inputs:
              data: {source}
    """)
    flow.write("quiet.py", QUIET)
    flow.write("viewer.py", """
        import sys
        from dora_zenoh import Node
        node = Node("viewer", dataflow=sys.argv[1], endpoint=sys.argv[2])
        print("waiting in", type(node._wake).__name__, flush=True)
        for event in node:
            pass
    """)
    proc = flow.start("--stop-after", "60s")
    viewer = None
    try:
        time.sleep(1.0)
        viewer = subprocess.Popen([sys.executable, "viewer.py", flow.name, flow.endpoint], cwd=flow.folder,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert viewer.stdout is not None
        assert viewer.stdout.readline().strip() == "waiting in " + ("LockInbox" if "timer" in source else "Inbox")
        time.sleep(waiting)  # it is inside recv() (0.5 s) or dozes (2 s: DOZE_AFTER is 1 s)
        viewer.send_signal(signal.SIGINT)
        _, err = viewer.communicate(timeout=20)
        assert "KeyboardInterrupt" in err
    finally:
        if viewer is not None and viewer.poll() is None:
            viewer.kill()
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()


@pytest.mark.parametrize("policy", ["drop_oldest", "block"])
@pytest.mark.parametrize("dozing", [False, True], ids=["in-recv", "dozing"])
def test_close_from_another_thread_ends_a_waiting_loop(flow, dozing, policy):
    """``node.close()`` on another thread (a watchdog, a GUI) ends ``for event in node``, whether
    the node waits in Zenoh's recv() (closed after 0.5 s; with a block input, in its FIFO
    channel) or dozes (closed once it does)."""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: quiet
            path: quiet.py
            env: {{QUIET_FOR: "60", QUIET_UNTIL: result.json}}
            outputs: [data]
          - id: watched
            path: watched.py
            env: {{DOZING: "{int(dozing)}"}}
            inputs:
              data: {{source: quiet/data, queue_policy: {policy}}}
    """)
    flow.write("quiet.py", QUIET)
    flow.write("watched.py", """
        import json, os, threading, time
        from dora import Node
        node = Node()
        def close_once_dozing():
            deadline = time.monotonic() + 60
            while node._wake.dozes == 0 and time.monotonic() < deadline:  # DOZE_AFTER is 1 s
                time.sleep(0.05)
            time.sleep(0.2)  # blocked on the bell by now
            node.close()
        if os.environ["DOZING"] == "1":
            threading.Thread(target=close_once_dozing).start()
        else:
            threading.Timer(0.5, node.close).start()
        events = [event["type"] for event in node]
        json.dump({"events": events, "dozes": node._wake.dozes}, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["events"] == []
    if dozing:
        assert out["dozes"] == 1


def test_queue_size_one_gives_the_newest_message_despite_timer_wakeups(flow):
    """``queue_size: 1`` means "only the newest": a node that wakes up late gets exactly the last
    message, even with a fast timer filling the ring with wake-up markers meanwhile."""
    flow.write("dataflow.yml", """
        nodes:
          - id: camera
            path: camera.py
            outputs: [frame]
          - id: detector
            path: detector.py
            inputs:
              frame: {source: camera/frame, queue_size: 1}
              tick: dora/timer/millis/2
    """)
    flow.write("camera.py", """
        from dora import Node
        node = Node()
        for i in range(100):
            node.send_output("frame", str(i).encode())
        open("sent", "w").close()
    """)
    flow.write("detector.py", """
        import json, os, time
        from dora import Node
        node = Node()
        deadline = time.monotonic() + 30
        while not os.path.exists("sent") and time.monotonic() < deadline:
            time.sleep(0.01)  # busy: all 100 frames, and ticks, arrive meanwhile
        time.sleep(0.5)
        frames, ticks = [], 0
        for event in node:
            if event["type"] == "INPUT" and event["id"] == "frame":
                frames.append(bytes(event["value"].to_numpy(zero_copy_only=False)).decode())
            elif event["type"] == "INPUT":
                ticks += 1
            elif event["type"] == "INPUT_CLOSED" and event["id"] == "frame":
                break
        json.dump({"frames": frames, "ticks": ticks}, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["frames"] == ["99"]
    assert out["ticks"] >= 1
    assert "input 'frame' dropped 99 message(s) in all" in res.stderr


def test_messages_queued_before_a_close_are_still_delivered(flow):
    """An input may close while its node is busy (here: its sender is gone and the node
    has not read anything for seconds). What arrived before the close still comes first."""
    flow.write("dataflow.yml", """
        nodes:
          - id: brief
            path: brief.py
            outputs: [data]
          - id: busy
            path: busy.py
            inputs:
              data: brief/data
    """)
    flow.write("brief.py", """
        from dora import Node
        node = Node()
        for i in range(3):
            node.send_output("data", str(i).encode())
    """)
    flow.write("busy.py", """
        import json, time
        from dora import Node
        node = Node()
        time.sleep(3.0)  # the input closes meanwhile (its sender exited 2 s ago)
        events = [[e["type"], e["id"]] for e in node]
        json.dump(events, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert flow.result() == [["INPUT", "data"]] * 3 + [["INPUT_CLOSED", "data"], ["STOP", "ALL_INPUTS_CLOSED"]]


def test_drops_are_counted_exactly_between_lock_step_phases(flow):
    """The inbox's short path (one message in the ring: counted without parsing its sequence
    number) and its general path (a burst that overflows the ring and is trimmed) take turns;
    the drop count stays exact and the input still closes after the sender's last message."""
    flow.write("dataflow.yml", """
        nodes:
          - id: sender
            path: sender.py
            inputs:
              ack: receiver/ack
            outputs: [data]
          - id: receiver
            path: receiver.py
            inputs:
              data: {source: sender/data, queue_size: 5}
            outputs: [ack]
    """)
    flow.write("sender.py", """
        from dora import Node
        node = Node()
        def lock_step(numbers):
            for i in numbers:
                node.send_output("data", str(i).encode())
                event = node.next(timeout=30)
                assert event is not None and event["id"] == "ack", event
        lock_step(range(0, 50))
        for i in range(50, 250):  # the receiver sleeps through this burst
            node.send_output("data", str(i).encode())
        open("burst-sent", "w").close()
        event = node.next(timeout=30)  # the ack of 249: the burst is through
        assert event is not None and event["id"] == "ack", event
        lock_step(range(250, 300))
    """)
    flow.write("receiver.py", """
        import json, os, time
        from dora import Node
        node = Node()
        got = []
        for event in node:
            if event["type"] != "INPUT":
                if event["type"] == "INPUT_CLOSED":
                    break
                continue
            n = int(bytes(event["value"].to_numpy(zero_copy_only=False)).decode())
            got.append(n)
            if n < 50 or n >= 249:  # 249, the burst's last, is kept: drop_oldest keeps the newest
                node.send_output("ack", b"")
            if n == 49:  # sleep through the burst that this ack lets go
                deadline = time.monotonic() + 30
                while not os.path.exists("burst-sent") and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.3)
        json.dump(got, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    got = flow.result()
    assert got[:50] == list(range(50)) and got[-51:] == list(range(249, 300)), got
    assert got == sorted(got) and len(got) < 300
    assert f"input 'data' dropped {300 - len(got)} message(s) in all" in res.stderr
    assert "on the way" not in res.stderr, res.stderr  # the ring overflowed: nothing was lost before it


def test_a_gap_on_the_way_is_not_blamed_on_the_primary_inputs_queue(flow):
    """Messages that never reached the node (a gap in the sender's sequence numbers, here
    from a plain session writing as `tx` would) are reported as lost on the way, not as
    dropped by a full queue: one at a time they go the inbox's short path, which took every
    message for the next one and counted such a gap, if ever, as the queue's."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: quiet.py
            env: {QUIET_UNTIL: result.json}
            outputs: [data]
          - id: rx
            path: receiver.py
            inputs:
              data: {source: tx/data, queue_size: 100}
    """)
    flow.write("quiet.py", QUIET)
    flow.write("receiver.py", """
        import json
        from dora import Node
        node = Node()
        got = []
        for event in node:
            if event["type"] == "INPUT":
                got.append(int(bytes(event["value"].to_numpy(zero_copy_only=False)).decode()))
                if len(got) == 8:
                    break
        json.dump(got, open("result.json", "w"))
    """)
    proc = flow.start()
    try:
        with zenoh.open(zconfig.peer_config([flow.endpoint], [])) as session:
            assert zconfig.wait_for_peers(session, 20)
            time.sleep(1.0)  # gossip links it to rx
            for seq in [0, 1, 2, 3, 7, 8, 9, 10]:  # 4, 5 and 6 never leave
                session.put(f"dora/{flow.name}/tx/data", str(seq).encode(),
                            attachment=b'{"seq":%d,"ts":%d}' % (seq, time.time_ns()),
                            congestion_control=zenoh.CongestionControl.BLOCK)
                time.sleep(0.1)  # each alone in rx's ring
            out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert flow.result() == [0, 1, 2, 3, 7, 8, 9, 10]
    assert "input 'data' lost 3 message(s) on the way" in err, err
    assert "dropped 3 message(s) before the node ended (queue_size=100; 3 of them lost on the way" in err, err
    assert "is full" not in err, err


def test_a_burst_is_flushed_when_its_sender_waits_and_a_single_message_is_not(flow):
    """A node that sent several messages and then waits sends one empty express message on
    its flush key (so that Zenoh sends the burst's batch now); one message alone does not.
    The flush key is internal: `dora/**` does not show it."""
    flow.write("dataflow.yml", """
        nodes:
          - id: bursty
            path: sender.py
            env: {SEND: "a,b,a"}
            outputs: [a, b]
          - id: single
            path: sender.py
            env: {SEND: "a"}
            outputs: [a]
          - id: reader
            path: reader.py
            inputs: {a: bursty/a, b: bursty/b, s: single/a}
    """)
    flow.write("sender.py", """
        import os, time
        from dora import Node
        node = Node()
        deadline = time.monotonic() + 30
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the test's subscription is known to this session too
        for i, output in enumerate(os.environ["SEND"].split(",")):
            node.send_output(output, b"%d" % i)
        assert node.next(timeout=1.0)["type"] == "ERROR"  # times out: a burst is flushed right before
        assert node.next(timeout=0.2)["type"] == "ERROR"  # nothing new sent: no second flush
    """)
    flow.write("reader.py", """
        import json
        from dora import Node
        node = Node()
        got = []
        for event in node:
            if event["type"] == "INPUT":
                got.append([event["id"], bytes(event["value"].to_numpy(zero_copy_only=False)).decode()])
        json.dump(got, open("result.json", "w"))
    """)
    proc = flow.start()
    flushes, user_keys = [], []
    try:
        with zenoh.open(zconfig.peer_config([flow.endpoint], [])) as session:
            flush_sub = session.declare_subscriber(f"dora/@dz/flush/{flow.name}/*",
                                                   zenoh.handlers.FifoChannel(100))
            data_sub = session.declare_subscriber("dora/**", zenoh.handlers.FifoChannel(100))
            let_senders_go(session, flow)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            flushes = [str(s.key_expr).rsplit("/", 1)[1] for s in iter(flush_sub.try_recv, None)]
            user_keys = [str(s.key_expr) for s in iter(data_sub.try_recv, None)]
    finally:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert flushes == ["bursty"], (flushes, err)
    assert sorted(user_keys) == sorted(f"dora/{flow.name}/{k}" for k in ("bursty/a", "bursty/b", "bursty/a",
                                                                          "single/a"))
    got = flow.result()
    assert [g for g in got if g[0] != "s"] == [["a", "0"], ["b", "1"], ["a", "2"]] and ["s", "0"] in got


def test_two_inputs_of_one_output_both_get_every_message(flow):
    """Two inputs reading the same output (dora allows it): the second one's subscriber also
    sees the inbox's markers on that key, and took them for messages: the node hung."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [out]
          - id: rx
            path: rx.py
            inputs:
              a: {source: tx/out, queue_size: 100}
              b: {source: tx/out, queue_size: 100}
    """)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        for i in range(30):
            node.send_output("out", str(i).encode())
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        got = {"a": [], "b": []}
        closed = []
        for event in Node():
            if event["type"] == "INPUT":
                got[event["id"]].append(bytes(event["value"].to_numpy()).decode())
            elif event["type"] == "INPUT_CLOSED":
                closed.append(event["id"])
        json.dump({"got": got, "closed": sorted(closed)}, open("result.json", "w"))
    """)
    res = flow.run("--stop-after", "30s")
    assert res.returncode == 0, res.stderr
    expected = [str(i) for i in range(30)]
    assert flow.result() == {"got": {"a": expected, "b": expected}, "closed": ["a", "b"]}


DOZER = """
    import json, os, threading, time
    from dora import Node
    node = Node()
    main = threading.get_native_id()

    def switches():  # the node thread's voluntary context switches: one per wake-up from a wait
        for line in open(f"/proc/self/task/{main}/status"):
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])

    seen = {}
    def watch():  # while the node thread waits for the late message
        deadline = time.monotonic() + 30  # past DOZE_AFTER (1 s): the doze has begun (a loaded
        while node._wake.dozes < 1 and time.monotonic() < deadline:  # machine starts it later)
            time.sleep(0.05)
        time.sleep(0.2)  # its set-up done
        a = switches()
        time.sleep(1.0)
        seen["switches_in_1s"] = switches() - a
        seen["dozes"] = node._wake.dozes
        open("measured", "w").write("")  # a sender that waits for this sends only now
    threading.Thread(target=watch, daemon=True).start()
    t0 = time.monotonic()
    event = next(node)
    seen["type"], seen["id"] = event["type"], event.get("id")
    seen["waited"] = time.monotonic() - t0
    if os.environ.get("THEN_STOP"):  # a dozing node must also wake for STOP (a marker, not data)
        seen["then"] = [e["type"] for e in node]
    json.dump(seen, open("result.json", "w"))
"""


@pytest.mark.parametrize("policy", ["drop_oldest", "block"])
def test_a_long_wait_dozes_without_waking_and_still_gets_the_message(flow, policy):
    """A node waiting over DOZE_AFTER stops waking its thread (Zenoh's recv() wakes 10x/s to
    look for signals: ~2 % of a core at 100 idle nodes) and still gets the next message (a
    block input's: through its FIFO's bell, dora_zenoh.node.fifo)."""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: late
            path: late.py
            outputs: [data]
          - id: dozer
            path: dozer.py
            inputs:
              data: {{source: late/data, queue_policy: {policy}}}
    """)
    flow.write("late.py", """
        import os, time
        from dora import Node
        node = Node()
        deadline = time.monotonic() + 60
        while not os.path.exists("measured") and time.monotonic() < deadline:  # not during the count
            time.sleep(0.05)
        node.send_output("data", b"late")
    """)
    flow.write("dozer.py", DOZER)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["type"] == "INPUT" and out["id"] == "data"
    assert out["dozes"] >= 1
    # polling recv() makes ~10; dozing, 0-2 (3 seen once, in a CI run with other load)
    assert out["switches_in_1s"] <= 4, out


def test_a_dozing_node_wakes_for_stop_and_for_a_timer(flow):
    """What reaches a node as a marker (a timer tick, STOP) wakes it from a doze too."""
    flow.write("dataflow.yml", """
        nodes:
          - id: quiet
            path: quiet.py
            env: {QUIET_FOR: "60"}
            outputs: [data]
          - id: dozer
            path: dozer.py
            env: {THEN_STOP: "1"}
            inputs:
              data: quiet/data
              tick: dora/timer/secs/3
    """)
    flow.write("quiet.py", QUIET)
    flow.write("dozer.py", DOZER)
    proc = flow.start()
    try:
        time.sleep(6.0)  # the tick came about 3 s in, and the node dozes again after it
        proc.send_signal(signal.SIGINT)  # the run stops: STOP reaches the dozing node
        proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = flow.result()
    assert out["type"] == "INPUT" and out["id"] == "tick", out
    assert out["dozes"] >= 1, out  # (not the switches: under load the tick can fall in the count)
    assert out["then"][-1] == "STOP", out

