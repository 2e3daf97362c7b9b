"""dora-rs 1.1's Node API beyond next/send_output, on queued events (the differential test in
test_dora_parity.py covers the empty cases, which are the only deterministic ones there)."""
from __future__ import annotations

import re

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_nonblocking_receive_async_raw_and_service_calls(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            inputs:
              ready: rx/ready
            outputs: [data, raw, req]
          - id: rx
            path: rx.py
            inputs:
              data: {source: tx/data, queue_size: 50}
              raw: tx/raw
              req: tx/req
            outputs: [ready]
    """)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        assert node.next()["id"] == "ready"
        for i in range(5):
            node.send_output("data", str(i).encode())
        raw = node.send_output_raw("raw", 3, {"k": 1})
        mv = raw.as_memoryview()
        mv[:] = b"xyz"
        mv.release()
        raw.send()
        rid = node.send_service_request("req", b"q")
        open("rid.txt", "w").write(rid)
        for i in range(5, 7):
            node.send_output("data", str(i).encode())
        open("sent.txt", "w").write("")
        assert node.next()["id"] == "ready"  # rx has drained: now end, and close its inputs
    """)
    flow.write("rx.py", """
        import asyncio, json, os, time
        from dora import Node
        node = Node()
        out = {"empty_first": node.is_empty(), "try_recv_first": node.try_recv()}
        node.send_output("ready", b"")
        deadline = time.monotonic() + 60
        while not os.path.exists("sent.txt") and time.monotonic() < deadline:
            time.sleep(0.01)  # tx has sent everything (on a loaded machine that can take a while)
        time.sleep(0.5)  # let the last ones arrive
        ev = node.try_recv()
        out["try_recv"] = [ev["id"], bytes(ev["value"].to_pylist()).decode()]
        out["is_empty"] = node.is_empty()  # looks, and leaves the event queued
        drained = node.drain()
        out["drain"] = [[e["id"], bytes(e["value"].to_pylist()).decode()] for e in drained]
        raw = [e for e in drained if e["id"] == "raw"][0]
        out["raw"] = [str(raw["value"].type), raw["metadata"]["k"]]
        req = [e for e in drained if e["id"] == "req"][0]
        out["request_id"] = req["metadata"]["request_id"]
        out["empty_after"] = node.is_empty()
        node.send_output("ready", b"")

        async def rest():
            got = []
            while True:
                event = await node.recv_async(timeout=10)
                if event is None or event["type"] == "STOP":
                    return got
                got.append([event["type"], event["id"]])

        out["async"] = asyncio.run(rest())
        out["ids"] = [node.dataflow_id(), node.dataflow_name(), node.restart_count(), node.is_restart()]
        out["config"] = node.node_config()
        json.dump(out, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stdout + res.stderr
    out = flow.result()
    assert out["empty_first"] is True and out["try_recv_first"] is None
    assert out["try_recv"] == ["data", "0"]
    assert out["is_empty"] is False
    assert out["drain"] == [["data", str(i)] for i in range(1, 5)] + [["raw", "xyz"], ["req", "q"]] + [
        ["data", "5"], ["data", "6"]]
    assert out["raw"] == ["uint8", 1]
    assert out["request_id"] == (flow.folder / "rid.txt").read_text()
    assert UUID.match(out["request_id"]) and out["request_id"][14] == "7"  # a UUID v7
    assert out["empty_after"] is True
    assert out["async"] == [["INPUT_CLOSED", "data"], ["INPUT_CLOSED", "raw"], ["INPUT_CLOSED", "req"]]
    dataflow_id, name, restarts, is_restart = out["ids"]
    assert UUID.match(dataflow_id) and name == flow.name and restarts == 0 and is_restart is False
    assert out["config"] == {"inputs": {"data": {"source": "tx/data", "queue_size": 50}, "raw": "tx/raw",
                                        "req": "tx/req"}, "outputs": ["ready"]}


def test_operator_undeclared_output_warns_once_and_drops(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: rt
            operators:
              - id: op
                python: op.py
                inputs:
                  tick: dora/timer/millis/20
                outputs: [out]
    """)
    flow.write("op.py", """
        from dora import DoraStatus


        class Operator:
            def __init__(self):
                self.n = 0

            def on_event(self, event, send_output):
                if event["type"] == "INPUT":
                    self.n += 1
                    send_output("typo", b"x")
                    if self.n == 3:
                        open("went-on", "w").write(str(self.n))
                        return DoraStatus.STOP_ALL
                return DoraStatus.CONTINUE
    """)
    res = flow.run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert (flow.folder / "went-on").read_text() == "3"
    text = res.stdout + res.stderr
    assert text.count("has no output 'typo' (declared outputs: out): its messages are dropped") == 1, text


def test_ros2_classes_name_the_gap(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: ros
            path: ros.py
    """)
    flow.write("ros.py", """
        import dora
        from dora import Node, Ros2Context
        node = Node()
        try:
            Ros2Context()
        except NotImplementedError as exc:
            open("why.txt", "w").write(str(exc))
        try:
            node.merge_external_events(None)
        except NotImplementedError as exc:
            open("merge.txt", "w").write(str(exc))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dora-zenoh has no ROS 2 bridge" in (flow.folder / "why.txt").read_text()
    assert "dora-zenoh has no ROS 2 bridge" in (flow.folder / "merge.txt").read_text()
