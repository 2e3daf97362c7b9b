"""The Python operator runtime under `dora-zenoh run`: real processes, real Zenoh on loopback."""
from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli

RECORDER = """
    import json, os
    from dora import Node
    node = Node()
    events = []
    for event in node:
        entry = {"type": event["type"], "id": event["id"]}
        if event["type"] == "INPUT":
            value = event["value"]
            entry["data"] = bytes(value.to_pylist() if hasattr(value, "to_pylist") else value).decode()
            # dora adds a timestamp (a datetime, different each run) to every input's metadata
            entry["metadata"] = {k: v for k, v in event["metadata"].items() if k != "timestamp"}
        events.append(entry)
    json.dump(events, open(os.environ.get("OUT", "result.json"), "w"))
"""


def inputs_of(events: list[dict], input_id: str) -> list[str]:
    return [e["data"] for e in events if e["type"] == "INPUT" and e["id"] == input_id]


def calls(flow, op_id: str) -> list[str]:
    """Lines an operator appended to calls_<id>.txt, one per handler call."""
    path = flow.folder / f"calls_{op_id}.txt"
    return path.read_text().splitlines() if path.exists() else []


def counting_operator(body: str, *, imports: str = "") -> str:
    """An on_input operator that logs each call to calls_<OP>.txt, then runs ``body``
    (with ``n``, the 1-based call number, and ``send_output`` in scope)."""
    return f"""
import os
{imports}
OP = os.path.splitext(os.path.basename(__file__))[0]


class Operator:
    def __init__(self):
        self.n = 0

    def on_input(self, input_id, value, send_output):
        self.n += 1
        n = self.n
        with open(f"calls_{{OP}}.txt", "a") as f:
            f.write(f"{{input_id}} {{n}}\\n")
{_indent(body, 8)}
"""


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line if line.strip() else line for line in text.strip("\n").splitlines())


def runtime_yaml(ops: dict[str, str], extra: str = "", node: str = "rt") -> str:
    """A runtime node whose operators (id -> file stem) each tick on a timer."""
    items = "".join(f"""
      - id: {op}
        python: {stem}.py
        inputs:
          tick: dora/timer/millis/20
        outputs: [out]""" for op, stem in ops.items())
    return f"nodes:\n  - id: {node}\n    operators:{items}\n{extra}"


# -- the examples ----------------------------------------------------------------------------

def run_example(tmp_path: Path, endpoint: str, flow_name: str, yml: str):
    dest = tmp_path / "python-operator"
    shutil.copytree(ROOT / "examples" / "python-operator", dest)
    return cli("run", str(dest / yml), "--name", flow_name, "--endpoint", endpoint)


def test_example_counter_operator(tmp_path, endpoint, flow_name):
    res = run_example(tmp_path, endpoint, flow_name, "dataflow.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert [ln for ln in res.stdout.splitlines() if ln.startswith("[printer] printer: counter =")] == [
        f"[printer] printer: counter = {i}" for i in range(1, 11)]
    assert "[counter] counter: got tick (0 bytes), count is now 10" in res.stdout
    assert "[printer] printer: input counter closed" in res.stdout


@pytest.mark.parametrize("yml", ["pipeline.yml", "pipeline-event.yml"])
def test_example_two_operator_pipeline(tmp_path, endpoint, flow_name, yml):
    res = run_example(tmp_path, endpoint, flow_name, yml)
    assert res.returncode == 0, res.stdout + res.stderr
    printed = [ln.split(" = ")[1] for ln in res.stdout.splitlines() if ln.startswith("[printer] printer: doubled")]
    if yml == "pipeline.yml":
        assert printed == [str(2 * i) for i in range(1, 11)]
    else:  # metadata travels through both operators
        assert printed == [f"{2 * i} {{'n': {i}}}" for i in range(1, 11)]
        assert "[pipeline] [doubler] doubler: input value closed" in res.stdout
        assert "[pipeline] [doubler] doubler: stop" in res.stdout
    assert "[pipeline] [doubler] doubler: 10 -> 20" in res.stdout


# -- return values -----------------------------------------------------------------------------

OWN_ENUM = """
from enum import Enum
class DoraStatus(Enum):
    OK = 0
    STOP = 1
    STOP_ALL = 2
"""

#: operator -> (imports, what it returns to go on, what it returns to stop)
ACCEPTED = {
    "none_int": ("", "None", "1"),
    "int_shim": ("from dora import DoraStatus", "0", "DoraStatus.STOP"),
    "own_enum": (OWN_ENUM, "DoraStatus.OK", "DoraStatus.STOP"),
    "ours": ("from dora_zenoh import DoraStatus", "DoraStatus.CONTINUE", "DoraStatus.STOP"),
    "intenum": ("import enum\nclass S(enum.IntEnum):\n    GO = 0\n    HALT = 1", "S.GO", "S.HALT"),
}


def test_accepted_return_values_continue_and_stop(flow):
    """Each accepted form of CONTINUE keeps its operator running, each form of STOP stops it:
    every operator is called exactly 3 times, and the run succeeds."""
    for op, (imports, go, halt) in ACCEPTED.items():
        flow.write(f"{op}.py", counting_operator(f"return {halt} if n == 3 else {go}", imports=imports))
    flow.write("dataflow.yml", runtime_yaml({op: op for op in ACCEPTED}))
    res = flow.run()
    assert res.returncode == 0, res.stdout + res.stderr
    for op in ACCEPTED:
        assert calls(flow, op) == ["tick 1", "tick 2", "tick 3"], op


#: operator -> (imports, the bad return statement, what the error must show)
REJECTED = {
    "text": ("", "return 'ok'", "returned 'ok', which is not a DoraStatus"),
    "three": ("", "return 3", "returned 3, which is not a DoraStatus"),
    "boolean": ("", "return True", "returned True, which is not a DoraStatus"),
    "floaty": ("", "return 0.0", "returned 0.0, which is not a DoraStatus"),
    "no_ok": ("from enum import Enum\nclass DoraStatus(Enum):\n    CONTINUE = 0\n    STOP = 1",
              "return DoraStatus.OK", "used DoraStatus.OK, which its enum DoraStatus does not define"),
    "bad_enum": ("from enum import Enum\nclass DoraStatus(Enum):\n    OK = 'ok'", "return DoraStatus.OK",
                 "returned <DoraStatus.OK: 'ok'>, which is not a DoraStatus"),
}


def test_rejected_return_values_stop_that_operator_with_an_error(flow):
    for op, (imports, ret, _) in REJECTED.items():
        flow.write(f"{op}.py", counting_operator(ret, imports=imports))
    flow.write("steady.py", counting_operator("return 1 if n == 5 else 0"))
    flow.write("dataflow.yml", runtime_yaml({**{op: op for op in REJECTED}, "steady": "steady"}))
    res = flow.run()
    assert res.returncode == 1, res.stdout + res.stderr
    for op, (_, _, shown) in REJECTED.items():
        assert calls(flow, op) == ["tick 1"], op  # stopped after its first call
        assert f"operator '{op}' ({op}.py) {shown}" in res.stderr
        assert f"operator '{op}' ({op}.py) failed:" in res.stderr
    assert len(calls(flow, "steady")) == 5  # the others keep going
    assert "node 'rt' exited with code 1" in res.stderr


# -- STOP, STOP_ALL, exceptions ------------------------------------------------------------------

def test_stop_stops_one_operator_only(flow):
    flow.write("quitter.py", counting_operator('send_output("out", b"q")\nreturn 1'))
    flow.write("worker.py", counting_operator('send_output("out", str(n).encode())\nreturn 1 if n == 5 else 0'))
    flow.write("recorder.py", RECORDER)
    flow.write("dataflow.yml", runtime_yaml({"quitter": "quitter", "worker": "worker"}, """
  - id: recorder
    path: recorder.py
    inputs:
      q: rt/quitter/out
      w: rt/worker/out
"""))
    res = flow.run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert calls(flow, "quitter") == ["tick 1"]
    assert len(calls(flow, "worker")) == 5
    events = flow.result()
    assert inputs_of(events, "q") == ["q"]
    assert inputs_of(events, "w") == ["1", "2", "3", "4", "5"]
    assert {"type": "INPUT_CLOSED", "id": "q"} in events and {"type": "INPUT_CLOSED", "id": "w"} in events
    assert events[-1] == {"type": "STOP", "id": "ALL_INPUTS_CLOSED"}


def test_stop_all_stops_the_whole_dataflow_cleanly(flow):
    """An operator returns STOP_ALL: every node and operator gets STOP, and the run exits 0."""
    flow.write("stopper.py", counting_operator("return 2 if n == 3 else 0"))
    flow.write("listener.py", """
        class Operator:
            def on_event(self, event, send_output):
                with open("listener.txt", "a") as f:
                    f.write(event["type"] + "\\n")
    """)
    flow.write("forever.py", """
        from dora import Node
        node = Node()
        for event in node:
            if event["type"] == "STOP":
                open("forever.txt", "w").write("got STOP")
    """)
    flow.write("dataflow.yml", runtime_yaml({"stopper": "stopper", "listener": "listener"}, """
  - id: forever
    path: forever.py
    inputs:
      tick: dora/timer/millis/50
"""))
    res = flow.run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "operator 'stopper' (stopper.py) returned STOP_ALL: stopping the dataflow" in res.stderr
    assert len(calls(flow, "stopper")) == 3
    assert (flow.folder / "forever.txt").read_text() == "got STOP"
    assert (flow.folder / "listener.txt").read_text().splitlines()[-1] == "STOP"
    assert "3 node(s) succeeded" not in res.stderr and "2 node(s) succeeded" in res.stderr


def test_exception_stops_one_operator_and_fails_the_run(flow):
    flow.write("boom.py", counting_operator('if n == 2:\n    raise ValueError("kaboom")'))
    flow.write("steady.py", counting_operator('send_output("out", str(n).encode())\nreturn 1 if n == 10 else 0'))
    flow.write("recorder.py", RECORDER)
    flow.write("dataflow.yml", runtime_yaml({"boom": "boom", "steady": "steady"}, """
  - id: recorder
    path: recorder.py
    inputs:
      steady: rt/steady/out
      boom: rt/boom/out
"""))
    res = flow.run()
    assert res.returncode == 1, res.stdout + res.stderr
    assert calls(flow, "boom") == ["tick 1", "tick 2"]
    assert inputs_of(flow.result(), "steady") == [str(i) for i in range(1, 11)]  # the others keep going
    assert "operator 'boom' (boom.py) raised ValueError: kaboom; the operator is stopped" in res.stderr
    assert "[rt] [boom] Traceback (most recent call last):" in res.stderr  # logged under its id
    assert "[rt] [boom] ValueError: kaboom" in res.stderr
    summary = res.stderr[res.stderr.index("dataflow '"):]
    assert "node 'rt' exited with code 1" in summary
    assert "operator 'boom' (boom.py) failed: raised ValueError: kaboom" in summary


def test_operator_that_fails_to_load_is_reported(flow):
    flow.write("broken.py", "class Operator(:\n")
    flow.write("neither.py", "class Operator:\n    pass\n")
    flow.write("fine.py", counting_operator("return 1 if n == 3 else 0"))
    flow.write("dataflow.yml", runtime_yaml({"broken": "broken", "neither": "neither", "fine": "fine"}))
    res = flow.run()
    assert res.returncode == 1, res.stdout + res.stderr
    assert "operator 'broken' (broken.py) could not be loaded: raised SyntaxError" in res.stderr
    assert "operator 'neither' (neither.py) could not be loaded" in res.stderr
    assert "defines neither on_event" in res.stderr
    assert len(calls(flow, "fine")) == 3


# -- in-process delivery, stdout, forms -------------------------------------------------------------

def test_operators_in_one_process_pass_messages(flow):
    """A burst into a `queue_policy: block` input of size 1 fed by the same process neither
    deadlocks nor drops; stdout lines go to the printing operator's send_stdout_as output only;
    the 2022 form gets bytes, the on_event form Arrow values and metadata."""
    flow.write("burst.py", """
        import os, pyarrow as pa
        class Operator:
            def on_input(self, input_id, value, send_output):
                assert value == b"" and input_id == "tick", (input_id, value)
                print(f"burst in pid {os.getpid()}")
                for i in range(50):
                    send_output("out", pa.array([i, i * i]), {"i": i})
                return 1
    """)
    flow.write("sink.py", """
        import json, os
        class Operator:
            def __init__(self):
                self.got = []
            def on_event(self, event, send_output):
                if event["type"] == "INPUT":
                    assert event["id"] == "nums", event["id"]
                    self.got.append([event["value"].to_pylist(), event["metadata"]["i"]])
                    print(f"sink got {len(self.got)} from pid {os.getpid()}")
                elif event["type"] == "INPUT_CLOSED":
                    json.dump(self.got, open("sink.json", "w"))
                    send_output("log", "sink done")
    """)
    flow.write("recorder.py", RECORDER)
    flow.write("dataflow.yml", """
        nodes:
          - id: rt
            operators:
              - id: burst
                python: burst.py
                inputs:
                  tick: dora/timer/millis/20
                outputs: [out]
              - id: sink
                python: sink.py
                inputs:
                  nums:
                    source: rt/burst/out
                    queue_size: 1
                    queue_policy: block
                outputs: [log]
                send_stdout_as: log
          - id: recorder
            path: recorder.py
            inputs:
              log:
                source: rt/sink/log
                queue_size: 100
    """)
    res = flow.run()
    assert res.returncode == 0, res.stdout + res.stderr
    assert flow.result("sink.json") == [[[i, i * i], i] for i in range(50)]
    pid = res.stdout.split("[rt] [burst] burst in pid ")[1].split()[0]
    log = inputs_of(flow.result(), "log")
    assert log == [f"sink got {i} from pid {pid}" for i in range(1, 51)] + ["sink done"]
    assert "[rt] [sink] sink got 50 from pid" in res.stdout  # still echoed and logged, tagged


def test_an_operator_s_block_input_from_another_node_is_read_from_its_fifo(flow):
    """The runtime read every `queue_policy: block` input through Zenoh's callback (it must,
    for what its own operators send each other: delivered inside its own put()). Read so, a
    block input from another machine counted as lost what Zenoh's recovery gave up on while the
    sender's cache still held it; from a FIFO channel, as any node's, it asks the cache again
    (dora_zenoh.node.replay.CacheRepair). Now only the runtime's own outputs come by callback."""
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        for i in range(100):
            node.send_output("data", str(i).encode())
    """)
    flow.write("relay.py", """
        class Operator:
            def on_event(self, event, send_output):
                if event["type"] == "INPUT":
                    send_output("out", event["value"], event["metadata"])
    """)
    flow.write("sink.py", """
        import gc, json
        class Operator:
            def __init__(self):
                self.got = {"data": [], "mine": []}
            def on_event(self, event, send_output):
                if event["type"] == "INPUT":
                    self.got[event["id"]].append(int(bytes(event["value"].to_numpy(zero_copy_only=False)).decode()))
                elif event["type"] == "STOP":  # (`mine` stays open: its operator runs to the end)
                    node = next(o for o in gc.get_objects() if type(o).__name__ == "RuntimeNode")
                    json.dump({**self.got, "fifo_taken": node._wake.fifo_taken}, open("sink.json", "w"))
    """)
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [data]
          - id: rt
            operators:
              - id: relay
                python: relay.py
                inputs:
                  data: {source: tx/data, queue_size: 2, queue_policy: block}
                outputs: [out]
              - id: sink
                python: sink.py
                inputs:
                  data: {source: tx/data, queue_size: 2, queue_policy: block}
                  mine: {source: rt/relay/out, queue_size: 1, queue_policy: block}
    """)
    res = flow.run("--stop-after", "8s")
    assert res.returncode == 0, res.stdout + res.stderr
    got = flow.result("sink.json")
    assert got["data"] == list(range(100)) and got["mine"] == list(range(100)), got
    # both operators' `data` came from FIFOs (one subscription per key and input); `mine` did not
    assert got["fifo_taken"] == 200, got


# -- hot reload --------------------------------------------------------------------------------------

class Output:
    """Lines of a running `dora-zenoh run`, both streams, read on threads (bounded waits)."""

    def __init__(self, proc) -> None:
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        self.seen: list[str] = []
        for stream in (proc.stdout, proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s; seen:\n" + "\n".join(self.seen))


def replace_by_rename(path: Path, text: str) -> None:
    """Save the way many editors do: write a new file, then rename it over the old one."""
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    os.replace(tmp, path)


HOT_V1 = """
class Operator:
    def __init__(self):
        self.count = 0

    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            self.count += 1
            print(f"v1 count={self.count}")
"""

HOT_V2 = """
from dora import DoraStatus

class Operator:
    def on_event(self, event, send_output):
        if event["type"] != "INPUT":
            return DoraStatus.CONTINUE
        self.count += 1
        print(f"v2 count={self.count}")
        if not hasattr(self, "first_v2"):
            self.first_v2 = self.count
        return DoraStatus.STOP if self.count >= self.first_v2 + 2 else DoraStatus.CONTINUE
"""


def test_hot_reload_of_a_file_replaced_by_rename_keeps_state(flow):
    op = flow.write("live.py", HOT_V1)
    flow.write("dataflow.yml", """
        nodes:
          - id: rt
            operator:
              id: live
              python: live.py
              inputs:
                tick: dora/timer/millis/50
    """)
    proc = flow.start("--hot-reload")
    try:
        out = Output(proc)
        out.wait_for("[rt] v1 count=3")
        replace_by_rename(op, "class Operator(:\n")  # a broken save: the old code keeps running
        out.wait_for("reload failed, the old code keeps running")
        replace_by_rename(op, HOT_V2)
        out.wait_for("operator 'live' (live.py) reloaded (state kept)")
        assert proc.wait(timeout=30) == 0
        out.wait_for("finished: 1 node(s) succeeded")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while True:
        try:
            out.seen.append(out.lines.get(timeout=1.0))
        except queue.Empty:
            break
    v1 = [int(ln.split("=")[1]) for ln in out.seen if ln.startswith("[rt] v1 count=")]
    v2 = [int(ln.split("=")[1]) for ln in out.seen if ln.startswith("[rt] v2 count=")]
    assert v1 == list(range(1, len(v1) + 1)) and len(v1) >= 3
    assert v2 == [v1[-1] + 1, v1[-1] + 2, v1[-1] + 3]  # the instance's count went on
    assert any("SyntaxError" in ln for ln in out.seen)

