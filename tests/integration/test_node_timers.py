"""Timers of a node that waits for nothing from Zenoh: ticked by the node's own thread
(dora_zenoh.node.lockbox), and behaving as the timer thread's ticks do."""
from __future__ import annotations

import signal

import pytest
from conftest import wait_for

pytestmark = pytest.mark.timeout(120)


def test_a_timer_only_node_ticks_on_its_own_thread(flow):
    """No timer thread, no alarm thread and no Zenoh ring in a node on timers only; each
    timer ticks once per period, its timestamps one period apart (drift-free). A node that
    also reads data keeps the ring and the timer thread."""
    flow.write("dataflow.yml", """
        nodes:
          - id: ticker
            path: ticker.py
            inputs:
              fast: dora/timer/millis/10
              slow: dora/timer/millis/50
            outputs: [out]
          - id: reader
            path: ticker.py
            inputs:
              fast: dora/timer/millis/10
              slow: dora/timer/millis/50
              data: ticker/out
    """)
    flow.write("ticker.py", """
        import json, threading
        from dora import Node
        node = Node()
        stamps = {"fast": [], "slow": []}
        for event in node:
            if event["type"] == "INPUT" and event["id"] in stamps:
                stamps[event["id"]].append(event["metadata"]["timestamp"].timestamp())
                if len(stamps["slow"]) >= 5 and len(stamps["fast"]) >= 25:
                    break
        json.dump({"inbox": type(node._wake).__name__,
                   "threads": sorted({t.name for t in threading.enumerate()} & {"dora-zenoh-timers", "dora-zenoh-alarm"}),
                   "gaps": {k: [b - a for a, b in zip(v, v[1:])] for k, v in stamps.items()}},
                  open(f"{node.node_id}.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    ticker, reader = flow.result("ticker.json"), flow.result("reader.json")
    assert ticker["inbox"] == "LockInbox" and ticker["threads"] == []
    assert reader["inbox"] == "Inbox" and "dora-zenoh-timers" in reader["threads"]
    for gaps, period in ((ticker["gaps"]["fast"], 0.01), (ticker["gaps"]["slow"], 0.05)):
        # stamped when due: a multiple of the period apart (one, unless a loaded machine made the
        # node miss a deadline, whose tick then comes late but with its own time)
        assert all(g > 0 and abs(g / period - round(g / period)) < 0.2 for g in gaps), gaps


@pytest.mark.parametrize("shape", ["timers only", "timer and data"])
def test_ticks_due_while_the_node_was_busy_are_queued_and_the_rest_counted(flow, shape):
    """A node busy for 30 periods finds its timer's queue full (queue_size 3) of the newest
    ticks, oldest first, and the ticks that did not fit counted as dropped and reported, on
    its own thread's ticks as on the timer thread's (a node that also reads data)."""
    data = "\n              data: quiet/out" if shape == "timer and data" else ""
    flow.write("dataflow.yml", f"""
        nodes:
          - id: quiet
            path: quiet.py
            outputs: [out]
          - id: busy
            path: busy.py
            inputs:
              tick: {{source: dora/timer/millis/10, queue_size: 3}}{data}
    """)
    flow.write("quiet.py", """
        from dora import Node
        node = Node()
        for event in node:
            pass
    """)
    flow.write("busy.py", """
        import json, time
        from dora import Node
        node = Node()
        first = next(node)
        time.sleep(0.3)  # 30 periods
        queued = [e["metadata"]["timestamp"].timestamp() for e in node.drain() if e["id"] == "tick"]
        json.dump({"inbox": type(node._wake).__name__, "queued": queued[:3],
                   "dropped": node._inputs["tick"].dropped}, open("result.json", "w"))
    """)
    res = flow.run("--stop-after", "5s")
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["inbox"] == ("LockInbox" if shape == "timers only" else "Inbox")
    queued = out["queued"]
    assert len(queued) == 3 and queued == sorted(queued), queued
    # 30 periods passed: at least 26 beyond the 3 queued (29 deadlines after the first tick's), on the
    # node's own thread; the timer thread (which may itself be starved on a loaded machine) puts fewer
    assert out["dropped"] >= (26 if shape == "timers only" else 1), out
    log = res.stdout + res.stderr
    assert "input 'tick' is full (queue_size=3): dropping its oldest messages" in log
    assert "input 'tick' dropped" in log and "before the node ended (queue_size=3)" in log


def test_a_timer_only_node_waits_with_a_timeout_and_wakes_for_stop(flow):
    """next(timeout) on a node whose timer is far off times out (dora's timeout error); the
    run's stop (Ctrl-C) wakes it with STOP, and a close from another thread ends its loop."""
    flow.write("dataflow.yml", """
        nodes:
          - id: waiter
            path: waiter.py
            inputs:
              tick: dora/timer/secs/600
          - id: closer
            path: closer.py
            inputs:
              tick: dora/timer/secs/600
    """)
    flow.write("waiter.py", """
        import json
        from dora import Node
        node = Node()
        first = node.next(timeout=0.2)
        open("timed-out", "w").close()  # the test stops the run now
        rest = [event["type"] for event in node]
        json.dump({"first": [first["type"], first.get("error")], "rest": rest}, open("waiter.json", "w"))
    """)
    flow.write("closer.py", """
        import json, threading
        from dora import Node
        node = Node()
        threading.Timer(0.5, node.close).start()
        json.dump([event["type"] for event in node], open("closer.json", "w"))
    """)
    proc = flow.start("--stop-after", "90s")
    try:
        wait_for(lambda: (flow.folder / "timed-out").exists() and (flow.folder / "closer.json").exists(),
                 60, "the waiter's time-out and the closer's end")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
    waiter = flow.result("waiter.json")
    assert waiter["first"][0] == "ERROR" and "Timeout" in waiter["first"][1]
    assert waiter["rest"] == ["STOP"]
    assert flow.result("closer.json") == []
