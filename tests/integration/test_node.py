"""End-to-end behaviour of nodes under `dora-zenoh run`: real processes, real Zenoh on loopback."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import zenoh
from conftest import cli, long_lived_pids, wait_for, write_long_lived_flow

from dora_zenoh.tuning import sched
from dora_zenoh.wire import zconfig

RECORDER = textwrap.dedent("""
    import json, os, sys
    from dora import Node
    node = Node()
    events = []
    for event in node:
        entry = {"type": event["type"], "id": event["id"]}
        if event["type"] == "INPUT":
            entry["data"] = bytes(event["value"].to_numpy()).decode(errors="replace")
            # dora adds a timestamp (a datetime, different each run) to every input's metadata
            entry["metadata"] = {k: v for k, v in event["metadata"].items() if k != "timestamp"}
        events.append(entry)
        if os.environ.get("SLOW"):
            import time; time.sleep(float(os.environ["SLOW"]))
    json.dump(events, open(os.environ.get("OUT", "result.json"), "w"))
""")


def inputs_of(events, input_id):
    return [e["data"] for e in events if e["type"] == "INPUT" and e["id"] == input_id]


def test_first_message_after_node_arrives_at_slow_starter(flow):
    """The start barrier: a message sent right after Node() reaches a receiver that starts late."""
    flow.write("dataflow.yml", """
        nodes:
          - id: sender
            path: sender.py
            outputs: [first]
          - id: receiver
            path: receiver.py
            inputs:
              first: sender/first
    """)
    flow.write("sender.py", """
        from dora import Node
        Node().send_output("first", b"hello")
    """)
    flow.write("receiver.py", "import time; time.sleep(1.5)\n" + RECORDER)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    events = flow.result()
    assert events == [{"type": "INPUT", "id": "first", "data": "hello", "metadata": {}},
                      {"type": "INPUT_CLOSED", "id": "first"}, {"type": "STOP", "id": "ALL_INPUTS_CLOSED"}]


def test_upstream_killed_gives_input_closed_then_stop(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: crasher
            path: crasher.py
            outputs: [data]
          - id: sink
            path: sink.py
            inputs:
              data: crasher/data
    """)
    flow.write("crasher.py", """
        import os, signal, sys
        from dora import Node
        node = Node()
        for i in range(3):
            node.send_output("data", str(i).encode())
        # send_output hands the message to Zenoh's sender thread; give it time to leave
        # the process, so this models a crash after sending, not one in mid-send.
        import time; time.sleep(0.5)
        print("about to die", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    flow.write("sink.py", RECORDER)
    res = flow.run()
    assert res.returncode == 1
    events = flow.result()
    assert inputs_of(events, "data") == ["0", "1", "2"]
    assert [e["type"] for e in events[3:]] == ["INPUT_CLOSED", "STOP"]
    assert "node 'crasher' was killed by signal SIGKILL" in res.stderr
    assert "about to die" in res.stderr.split("last lines of 'crasher' stderr:")[1]


def test_summary_names_first_failure_not_its_victims(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: source
            path: source.py
            outputs: [data]
          - id: victim
            path: victim.py
            inputs:
              data: source/data
    """)
    flow.write("source.py", """
        from dora import Node
        node = Node()
        node.send_output("data", b"x")
        raise RuntimeError("sensor unplugged")
    """)
    flow.write("victim.py", """
        import sys
        from dora import Node
        for event in Node():
            if event["type"] == "INPUT_CLOSED":
                sys.exit("upstream went away")
    """)
    res = flow.run()
    assert res.returncode == 1
    assert "failed: node 'source' exited with code 1 (then also: victim)" in res.stderr, res.stderr
    assert "RuntimeError: sensor unplugged" in res.stderr


def test_dora_rs_scripts_run_unchanged(flow):
    """The reference benchmark's nodes (written for dora-rs) run as they are."""
    nodes = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "bench", "nodes"))
    if not os.path.isdir(nodes):
        pytest.skip("../shared/bench/nodes is not there")
    flow.write("dataflow.yml", f"""
        nodes:
          - id: ping
            path: {nodes}/ping.py
            inputs:
              pong: pong/pong
            outputs: [ping, done]
            env:
              RESULT_FILE: result.json
              SIZES: "8,65536,1048576"
              ROUNDS: "20"
              WARMUP: "2"
          - id: pong
            path: {nodes}/pong.py
            inputs:
              ping: ping/ping
              done: ping/done
            outputs: [pong]
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    report = flow.result()
    assert set(report) == {"8", "65536", "1048576"}
    assert all(r["rounds"] == 20 for r in report.values())


def test_drop_oldest_keeps_newest_and_reports(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: burst
            path: burst.py
            outputs: [data]
          - id: slow
            path: slow.py
            inputs:
              data:
                source: burst/data
                queue_size: 5
    """)
    flow.write("burst.py", """
        from dora import Node
        node = Node()
        for i in range(200):
            node.send_output("data", str(i).encode())
    """)
    flow.write("slow.py", "import time\n" + RECORDER.replace(
        "for event in node:", "time.sleep(1.0)\nfor event in node:"))
    res = flow.run()
    assert res.returncode == 0, res.stderr
    got = [int(x) for x in inputs_of(flow.result(), "data")]
    assert got == sorted(got) and got[-1] == 199 and 5 <= len(got) < 200
    assert "input 'data' is full (queue_size=5)" in res.stderr
    assert f"input 'data' dropped {200 - len(got)} message(s) in all" in res.stderr


def test_block_policy_never_drops(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: burst
            path: burst.py
            outputs: [data]
          - id: slow
            path: slow.py
            env:
              SLOW: "0.002"
            inputs:
              data:
                source: burst/data
                queue_size: 2
                queue_policy: block
    """)
    flow.write("burst.py", """
        from dora import Node
        node = Node()
        for i in range(300):
            node.send_output("data", str(i).encode())
    """)
    flow.write("slow.py", RECORDER)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert inputs_of(flow.result(), "data") == [str(i) for i in range(300)]
    assert "dropp" not in res.stderr


def test_slow_input_does_not_delay_other_inputs(flow):
    """A flooded input with a tiny queue drops its own messages; a second input loses nothing."""
    flow.write("dataflow.yml", """
        nodes:
          - id: flood
            path: flood.py
            outputs: [noise]
          - id: steady
            path: steady.py
            outputs: [signal]
          - id: sink
            path: sink.py
            env:
              SLOW: "0.001"
            inputs:
              noise:
                source: flood/noise
                queue_size: 1
              signal:
                source: steady/signal
                queue_size: 100
    """)
    flow.write("flood.py", """
        from dora import Node
        node = Node()
        for i in range(3000):
            node.send_output("noise", b"n")
    """)
    flow.write("steady.py", """
        from dora import Node
        node = Node()
        for i in range(50):
            node.send_output("signal", str(i).encode())
    """)
    flow.write("sink.py", RECORDER)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    events = flow.result()
    assert inputs_of(events, "signal") == [str(i) for i in range(50)]
    assert len(inputs_of(events, "noise")) < 3000


def test_timers_tick_with_all_units(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: ticker
            path: ticker.py
            inputs:
              fast: dora/timer/millis/10
              hz: dora/timer/hz/50
              slow: dora/timer/secs/1
    """)
    flow.write("ticker.py", """
        import json
        from dora import Node
        node = Node()
        counts = {"fast": 0, "hz": 0, "slow": 0}
        for event in node:
            if event["type"] == "INPUT":
                assert len(event["value"]) == 0
                counts[event["id"]] += 1
                if counts["slow"] >= 1 and counts["fast"] >= 20 and counts["hz"] >= 10:
                    break
        json.dump(counts, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    counts = flow.result()
    assert counts["slow"] >= 1 and counts["fast"] >= 20 and counts["hz"] >= 10


def test_undeclared_output_warns_once_and_drops_unless_strict(flow):
    """As dora-rs: a warning naming the declared outputs (once per output), the message
    dropped, the node goes on; DORA_ZENOH_STRICT_OUTPUTS=1 (or node.strict_outputs) makes it an error."""
    flow.write("dataflow.yml", """
        nodes:
          - id: talker
            path: talker.py
            outputs: [speech, status]
    """)
    flow.write("talker.py", """
        from dora import Node
        node = Node()
        for _ in range(3):
            node.send_output("speach", b"hi")
        node.send_output("speech", b"hi")
        open("went-on", "w").close()
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    warning = ("node 'talker' has no output 'speach' (declared outputs: speech, status): its messages are "
               "dropped, as dora-rs does")
    assert res.stderr.count(warning) == 1, res.stderr
    assert (flow.folder / "went-on").exists()
    (flow.folder / "went-on").unlink()
    res = flow.run(env={**os.environ, "DORA_ZENOH_STRICT_OUTPUTS": "1"})
    assert res.returncode == 1
    assert ("node 'talker' has no output 'speach' (declared outputs: speech, status); add it to `outputs:` "
            "in the dataflow YAML") in res.stderr
    assert not (flow.folder / "went-on").exists()


def test_send_output_after_close_names_the_call(flow):
    """Zenoh says only "session closed": the node's error names the output and the cause."""
    flow.write("dataflow.yml", """
        nodes:
          - id: talker
            path: talker.py
            outputs: [speech]
    """)
    flow.write("talker.py", """
        from dora import Node
        from dora_zenoh import NodeClosedError
        node = Node()
        node.send_output("speech", b"hi")
        node.close()
        try:
            node.send_output("speech", b"late")
        except NodeClosedError as e:
            open("error.txt", "w").write(str(e))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert (flow.folder / "error.txt").read_text() == (
        "node 'talker': send_output('speech') after close(): the node has left the dataflow; send before "
        "closing it")


def test_log_dir_that_cannot_be_made_is_a_clear_error(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: starter
            path: starter.py
    """)
    flow.write("starter.py", """
        open("started", "w").write("yes")
    """)
    blocker = flow.write("a-file", "not a folder")  # mkdir under a file fails, even for root
    res = flow.run("--log-dir", str(blocker / "logs"), env={**os.environ, "XDG_STATE_HOME": str(blocker / "state")})
    assert res.returncode == 1
    assert f"cannot create a log directory for the run in {blocker / 'logs'} (Not a directory)" in res.stderr
    assert "pass --log-dir with a directory you can write to" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (flow.folder / "started").exists()


def test_plain_zenoh_subscriber_reads_everything(flow):
    """A stock Zenoh session on `dora/**` sees user data with its metadata, and nothing internal."""
    flow.write("dataflow.yml", """
        nodes:
          - id: talker
            path: talker.py
            outputs: [text, raw, numbers]
    """)
    flow.write("talker.py", """
        import time
        import pyarrow as pa
        from dora import Node
        node = Node()
        deadline = time.monotonic() + 30  # until the test's plain subscriber is there (bounded)
        while time.monotonic() < deadline and not all(
                node._outputs[o][0].matching_status.matching for o in ("text", "raw", "numbers")):
            time.sleep(0.01)
        node.send_output("text", "hello zenoh", {"lang": "en"})
        node.send_output("raw", b"\\x00\\x01\\x02")
        node.send_output("numbers", pa.array([1, 2, 3], type=pa.int64()))
        time.sleep(0.5)
    """)
    proc = flow.start()
    seen = []
    conf = zconfig.peer_config([flow.endpoint], [])
    try:
        with zenoh.open(conf) as session:
            sub = session.declare_subscriber("dora/**", zenoh.handlers.FifoChannel(64))
            deadline = time.monotonic() + 30
            while len(seen) < 3 and time.monotonic() < deadline:
                sample = sub.try_recv()
                if sample is None:
                    time.sleep(0.01)
                    continue
                seen.append((str(sample.key_expr), sample.payload.to_bytes(), str(sample.encoding),
                             json.loads(sample.attachment.to_bytes())))
    finally:
        proc.wait(30)
    by_key = {k: (p, e, a) for k, p, e, a in seen}
    base = f"dora/{flow.name}/talker"
    assert set(by_key) == {f"{base}/text", f"{base}/raw", f"{base}/numbers"}
    payload, encoding, att = by_key[f"{base}/text"]
    assert payload == b"hello zenoh" and encoding.startswith("text/plain")
    assert att["params"] == {"lang": "en"} and att["seq"] == 0 and att["ts"] > 0
    assert by_key[f"{base}/raw"][:2] == (b"\x00\x01\x02", "application/octet-stream")
    import pyarrow as pa
    payload, encoding, _ = by_key[f"{base}/numbers"]
    assert encoding == "application/vnd.apache.arrow.stream"
    assert pa.ipc.open_stream(payload).read_next_batch().column(0).to_pylist() == [1, 2, 3]


def test_arrow_types_round_trip(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [ints, strings, floats, np]
          - id: rx
            path: rx.py
            inputs:
              ints: tx/ints
              strings: tx/strings
              floats: tx/floats
              np: tx/np
    """)
    flow.write("tx.py", """
        import numpy as np
        import pyarrow as pa
        from dora import Node
        node = Node()
        node.send_output("ints", pa.array([1, -2, 3], type=pa.int32()))
        node.send_output("strings", pa.array(["a", None, "c"]))
        node.send_output("floats", pa.array([0.5, 1.5]))
        node.send_output("np", np.arange(6, dtype=np.uint16).reshape(2, 3))
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        got = {}
        for event in Node():
            if event["type"] == "INPUT":
                got[event["id"]] = [str(event["value"].type), event["value"].to_pylist()]
        json.dump(got, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert flow.result() == {"ints": ["int32", [1, -2, 3]], "strings": ["string", ["a", None, "c"]],
                             "floats": ["double", [0.5, 1.5]], "np": ["uint16", [0, 1, 2, 3, 4, 5]]}


def test_values_read_late_are_each_events_own(flow):
    """A value may be built only when first read (see dora_zenoh.node.events.attach_value): events
    kept and read after later ones arrived, in reverse, each give their own array (same-shaped
    arrays, so all but the first are rebuilt from a remembered layout), as does dict(event)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [ints, raw]
          - id: rx
            path: rx.py
            inputs:
              ints: {source: tx/ints, queue_size: 100}
              raw: {source: tx/raw, queue_size: 100}
    """)
    flow.write("tx.py", """
        import pyarrow as pa
        from dora import Node
        node = Node()
        for i in range(6):
            node.send_output("ints", pa.array([i, None, -i], type=pa.int64()))
            node.send_output("raw", bytes([i, i + 1]))
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        kept = [e for e in Node() if e["type"] == "INPUT"]
        got = [[e["id"], e["value"].to_pylist(), dict(e)["value"].to_pylist()] for e in reversed(kept)]
        json.dump(got[::-1], open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    got = flow.result()
    ints = [[i, None, -i] for i in range(6)]
    raw = [[i, i + 1] for i in range(6)]
    assert [g[1] for g in got if g[0] == "ints"] == ints and [g[2] for g in got if g[0] == "ints"] == ints
    assert [g[1] for g in got if g[0] == "raw"] == raw and [g[2] for g in got if g[0] == "raw"] == raw


def test_send_stdout_as(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: chatty
            path: chatty.py
            outputs: [log]
            send_stdout_as: log
          - id: sink
            path: sink.py
            inputs:
              log: chatty/log
    """)
    flow.write("chatty.py", """
        from dora import Node
        Node()
        for i in range(3):
            print(f"line {i}")
    """)
    flow.write("sink.py", RECORDER)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    events = flow.result()
    assert inputs_of(events, "log") == ["line 0", "line 1", "line 2"]
    assert [e["type"] for e in events[3:]] == ["INPUT_CLOSED", "STOP"]
    assert "[chatty] line 2" in res.stdout


def test_env_and_args_reach_the_node(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: echo
            path: echo.py
            args: --speed 3 "two words"
            env:
              GAIN: 2.5
              ENABLED: true
              HOME_DIR: $HOME
    """)
    flow.write("echo.py", """
        import json, os, sys
        json.dump({"argv": sys.argv[1:], "gain": os.environ["GAIN"], "enabled": os.environ["ENABLED"],
                   "home": os.environ["HOME_DIR"], "cwd": os.getcwd()}, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    out = flow.result()
    assert out["argv"] == ["--speed", "3", "two words"]
    assert (out["gain"], out["enabled"], out["home"]) == ("2.5", "true", os.environ["HOME"])
    assert os.path.samefile(out["cwd"], flow.folder)


def write_probe_flow(flow, probes: str, measure: str, preamble: str = "") -> None:
    """A timer-driven source ``src`` and probe nodes reading ``src/x`` (``probes``: their YAML
    list items). On its first input each probe runs ``measure``, code that sets ``found``,
    and writes ``found`` to ``<its id>.json``. ``preamble`` runs before dora is imported."""
    flow.write("dataflow.yml", "nodes:\n  - id: src\n    path: src.py\n    inputs:\n"
               "      tick: dora/timer/millis/20\n    outputs: [x]\n"
               + textwrap.indent(textwrap.dedent(probes), "  "))
    flow.write("src.py", """
        from dora import Node
        node = Node()
        for event in node:
            if event["type"] == "INPUT":
                node.send_output("x", b"1")
    """)
    flow.write("probe.py", "import json, os\n" + textwrap.dedent(preamble) + "from dora import Node\nnode = Node()\n"
               "for event in node:\n"
               "    if event['type'] == 'INPUT':  # links are up: Zenoh has started its threads\n"
               + textwrap.indent(textwrap.dedent(measure), " " * 8)
               + "        json.dump(found, open(os.environ['DORA_NODE_ID'] + '.json', 'w'))\n        break\n")


def test_nodes_get_the_one_thread_zenoh_runtime_unless_they_block(flow):
    """A node runs Zenoh on one thread (no tx/net/acc threads of its own); a node with a
    `queue_policy: block` input gets a send thread of its own (a full input holds a receive
    thread), and a ZENOH_RUNTIME of the user wins."""
    write_probe_flow(flow, """
        - id: plain
          path: probe.py
          inputs:
            x: src/x
        - id: blocking
          path: probe.py
          inputs:
            x:
              source: src/x
              queue_policy: block
        - id: mine
          path: probe.py
          env:
            ZENOH_RUNTIME: "(rx:(worker_threads:2))"
          inputs:
            x: src/x
    """, """
        tasks = os.listdir("/proc/self/task")
        names = sorted({open(f"/proc/self/task/{t}/comm").read().strip().split("-")[0] for t in tasks})
        found = {"env": os.environ.get("ZENOH_RUNTIME"), "threads": names}
    """)
    env = {k: v for k, v in os.environ.items() if k != zconfig.RUNTIME_ENV}
    res = flow.run("--stop-after", "3s", env=env)
    assert res.returncode == 0, res.stderr
    plain, blocking, mine = (flow.result(f"{n}.json") for n in ("plain", "blocking", "mine"))
    assert plain["env"] == zconfig.NODE_RUNTIME
    assert "rx" in plain["threads"] and not {"tx", "net", "acc"} & set(plain["threads"])
    assert blocking["env"] == zconfig.BLOCK_NODE_RUNTIME and "tx" in blocking["threads"]
    assert not {"net", "acc"} & set(blocking["threads"])
    assert mine["env"] == "(rx:(worker_threads:2))" and "tx" in mine["threads"]


def _own_slice_ns() -> int | None:
    """se.slice of this thread, from /proc (None where the kernel does not show it)."""
    for line in open("/proc/thread-self/sched"):
        if line.startswith("se.slice"):
            return int(line.split()[-1])
    return None


def setting_probes(variable: str, ids: tuple[str, str, str], bad: str, outputs: bool) -> str:
    """Probe nodes (for write_probe_flow) of one of dora_zenoh.tuning.sched's settings, with ids in this
    order: the runner's default, ``0``, and ``bad``, a value that is not a number."""
    yaml = ""
    for node_id, value in zip(ids, (None, "0", bad), strict=True):
        yaml += f"- id: {node_id}\n  path: probe.py\n"
        if value is not None:
            yaml += f'  env:\n    {variable}: "{value}"\n'
        yaml += "  inputs:\n    x: src/x\n" + ("  outputs: [y]\n" if outputs else "")
    return yaml


def run_setting_probes(flow, variable: str, bad: str) -> None:
    """Run a setting_probes flow with the runner's default for ``variable`` (not the test's
    environment), and check that the bad value was named in a warning."""
    res = flow.run("--stop-after", "3s", env={k: v for k, v in os.environ.items() if k != variable})
    assert res.returncode == 0, res.stderr
    assert f"{variable}={bad!r} is not a whole number of microseconds" in res.stdout + res.stderr


def test_node_thread_asks_for_a_short_scheduler_slice(flow):
    """The runner asks for a 300 µs slice for every node's thread (dora_zenoh.tuning.sched); 0 keeps
    the kernel's default; a value that is not a number is named in a warning, and the node runs."""
    if sys.platform != "linux" or _own_slice_ns() is None:
        pytest.skip("needs Linux with per-thread slices in /proc/<pid>/sched")
    probe = subprocess.run([sys.executable, "-c", "from dora_zenoh.tuning import sched; print(sched.request_slice(300))"],
                           capture_output=True, text=True, timeout=30)
    if probe.stdout.strip() != "True":
        pytest.skip("this kernel does not take a custom slice (Linux >= 6.12 does)")
    write_probe_flow(flow, setting_probes(sched.SLICE_ENV, ("short", "kernel", "typo"), "fast", outputs=False), """
        line = next(l for l in open("/proc/thread-self/sched") if l.startswith("se.slice"))
        found = {"slice_ns": int(line.split()[-1])}
    """)
    run_setting_probes(flow, sched.SLICE_ENV, "fast")
    default_ns = _own_slice_ns()
    assert flow.result("short.json") == {"slice_ns": 300_000}
    assert flow.result("kernel.json") == {"slice_ns": default_ns} != {"slice_ns": 300_000}
    assert flow.result("typo.json") == {"slice_ns": default_ns}


def test_send_output_yields_the_cpu_once_per_gap(flow):
    """After handing Zenoh a message, send_output yields the CPU (dora_zenoh.tuning.sched): here once per
    send, the sends being further apart than the runner's 200 µs gap; never with 0; a value that
    is not a number is named in a warning, and the node sends without yielding."""
    write_probe_flow(flow, setting_probes(sched.SEND_YIELD_ENV, ("yields", "never", "typo"), "soon", outputs=True), """
        for _ in range(3):
            node.send_output("y", b"x")
            time.sleep(0.002)  # 2 ms apart: more than the gap
        found = {"yields": len(yields)}
    """, preamble="""
        import time
        yields = []  # counted, then done for real: dora_zenoh.node.node takes os.sched_yield at import
        _real_yield = os.sched_yield
        os.sched_yield = lambda: (yields.append(1), _real_yield())[1]
    """)
    run_setting_probes(flow, sched.SEND_YIELD_ENV, "soon")
    assert flow.result("yields.json") == {"yields": 3}
    assert flow.result("never.json") == {"yields": 0}
    assert flow.result("typo.json") == {"yields": 0}


def test_a_node_that_sent_spins_before_it_blocks(flow):
    """A node that sent something polls before it blocks for its next event (dora_zenoh.tuning.sched.Spin),
    for the runner's 100 µs; not with 0; a value that is not a number is named in a warning, and
    the node blocks at once; a node with no outputs never spins, nor one confined to one CPU."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs: a node confined to one never spins")
    write_probe_flow(flow, setting_probes(sched.SPIN_ENV, ("spins", "never", "typo"), "lots", outputs=True) + textwrap.dedent("""
        - id: sink
          path: probe.py
          inputs:
            x: src/x
        - id: pinned
          path: probe.py
          cpu_affinity: 0
          inputs:
            x: src/x
          outputs: [y]
    """), """
        spin = node._wake.spin
        for _ in range(200):  # a tick may already be queued (a loaded machine): then next() does not wait
            if node.node_id != "sink":
                node.send_output("y", b"x")
            node.next(timeout=5)  # the next tick, which a spin may or may not catch
            if spin is not None and spin.attempts:
                break  # it waited once, after a send: enough (a node that must not spin never gets here)
        found = {"budget_ns": spin.budget_ns, "attempts": min(spin.attempts, 1)} if spin else None
    """)
    run_setting_probes(flow, sched.SPIN_ENV, "lots")
    assert flow.result("spins.json") == {"budget_ns": 100_000, "attempts": 1}
    assert flow.result("never.json") is None
    assert flow.result("typo.json") is None
    assert flow.result("sink.json") is None
    assert flow.result("pinned.json") is None


def test_ctrl_c_sends_stop_and_kills_after_grace(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: polite
            path: polite.py
          - id: stubborn
            path: stubborn.py
    """)
    flow.write("polite.py", """
        from dora import Node
        for event in Node():
            if event["type"] == "STOP":
                print("polite got STOP", flush=True)
    """)
    flow.write("stubborn.py", """
        import signal, time
        from dora import Node
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        node = Node()
        print("stubborn ready", flush=True)
        while True:
            time.sleep(0.1)
    """)
    proc = flow.start("--grace", "1s")
    try:
        line = ""
        deadline = time.monotonic() + 30
        while "stubborn ready" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "[polite] polite got STOP" in out
    assert proc.returncode == 1, out + err
    assert "node 'stubborn' did not stop within the 1 s grace period and was killed" in err


def test_no_orphans_when_run_is_killed(flow):
    write_long_lived_flow(flow)
    proc = flow.start()
    try:
        pids = long_lived_pids(flow)
        assert all(psutil.pid_exists(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        gone, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=60)  # the reaper acts at once; a loaded machine is slow
        assert not alive, f"left running: {alive}"
    finally:
        proc.kill()


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init, which here reaps every 1-2 s)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_killed_runners_nodes_stop_themselves_and_leave_no_process(flow):
    """`run` killed (SIGKILL): a node that reads its events gets STOP (its supervisor is gone) and
    ends by itself, and the process it started ends too. Before (4 Dec), the node's line about it
    went to its stderr, a pipe to the dead runner: BrokenPipeError before the STOP, so the node
    ran on until the reaper killed it; and once the node did end by itself, the reaper looked
    for its children in its tree, which a dead process no longer has: the child was left."""
    flow.write("dataflow.yml", """
        nodes:
          - id: py
            path: py.py
            inputs: {t: dora/timer/millis/100}
    """)
    flow.write("py.py", """
        import os, subprocess
        from dora import Node
        node = Node()
        child = subprocess.Popen(["sleep", "600"])
        open("pids", "w").write(f"{os.getpid()} {child.pid}")
        for event in node:
            if event["type"] == "STOP":
                open("stopped", "w").write(event["id"])
    """)
    proc = flow.start()
    pids_file = flow.folder / "pids"
    try:
        wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2, 60, "the node to start")
        pids = [int(p) for p in pids_file.read_text().split()]
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: (flow.folder / "stopped").exists(), 30, "the node's STOP")
        wait_for(lambda: not [p for p in pids if running(p)], 30, "the node and its child to end")
    finally:
        proc.kill()
        for pid in [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_two_runs_of_the_same_dataflow_on_one_endpoint(flow):
    """The second run finds the endpoint busy, joins that network and renames itself; no cross-talk."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [data]
          - id: rx
            path: rx.py
            inputs:
              data:
                source: tx/data
                queue_size: 100
    """)
    flow.write("tx.py", """
        import os, time
        from dora import Node
        node = Node()
        time.sleep(1.0)
        for i in range(50):
            node.send_output("data", os.environ["DORA_ZENOH_RUN_TAG"].encode())
    """)
    flow.write("rx.py", """
        import json, os
        from dora import Node
        got = [bytes(e["value"].to_numpy()).decode() for e in Node() if e["type"] == "INPUT"]
        json.dump(got, open(f"result-{os.environ['DORA_ZENOH_RUN_TAG']}.json", "w"))
    """)
    env_a = dict(os.environ, DORA_ZENOH_RUN_TAG="a")
    env_b = dict(os.environ, DORA_ZENOH_RUN_TAG="b")
    from conftest import start_cli
    args = ("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint)
    first = start_cli(*args, cwd=flow.folder, env=env_a)
    # The second must find the endpoint taken: wait for the first's hub (a fixed 0.5 s was not
    # always enough on a loaded CI machine, and the first was the one renamed).
    deadline = time.monotonic() + 30
    while not zconfig.tcp_port_in_use(flow.endpoint) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    second = start_cli(*args, cwd=flow.folder, env=env_b)
    try:
        out_a = first.communicate(timeout=60)
        out_b = second.communicate(timeout=60)
    finally:
        first.kill()
        second.kill()
    assert first.returncode == 0 and second.returncode == 0, (out_a, out_b)
    assert flow.result("result-a.json") == ["a"] * 50
    assert flow.result("result-b.json") == ["b"] * 50
    assert f"dataflow '{flow.name}-2'" in out_b[1]


def test_an_endpoint_taken_by_another_program_is_said_and_the_run_goes_on_beside_it(flow):
    """Something that is not Zenoh listens on the endpoint: the run says so (no peer linked) and
    runs on an endpoint of its own, instead of running there silently."""
    import socket
    write_tx_to_rx(flow)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        for i in range(5):
            node.send_output("out", b"%d" % i)
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        got = [bytes(e["value"].to_numpy()).decode() for e in Node() if e["type"] == "INPUT"]
        json.dump(got, open("result.json", "w"))
    """)
    host, port = flow.endpoint.split("/", 1)[1].rsplit(":", 1)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((host, int(port)))
        squatter.listen(8)
        res = flow.run()
    assert res.returncode == 0, res.stderr
    assert f"{flow.endpoint} answers, but no Zenoh peer there linked within 3 s" in res.stderr, res.stderr
    assert flow.result() == [str(i) for i in range(5)]


def test_dynamic_node_joins_running_dataflow(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: source
            path: source.py
            outputs: [data]
          - id: plot
            path: dynamic
            inputs:
              data: source/data
    """)
    flow.write("source.py", """
        from dora import Node
        node = Node()
        for i in range(200):
            node.send_output("data", str(i).encode())
            event = node.next(timeout=0.05)  # 20 Hz, and ends at STOP
            if event is None or event["type"] == "STOP":
                break
    """)
    flow.write("plot.py", """
        import json, sys
        from dora_zenoh import Node
        node = Node("plot", dataflow=sys.argv[1], endpoint=sys.argv[2])
        got = []
        for event in node:
            if event["type"] == "INPUT":
                got.append(int(bytes(event["value"].to_numpy())))
                if len(got) == 5:
                    break
        json.dump(got, open("result.json", "w"))
    """)
    proc = flow.start("--stop-after", "20s")
    try:
        time.sleep(1.0)
        import subprocess
        import sys
        dyn = subprocess.run([sys.executable, "plot.py", flow.name, flow.endpoint], cwd=flow.folder,
                             capture_output=True, text=True, timeout=30)
        assert dyn.returncode == 0, dyn.stderr
        got = flow.result()
        assert len(got) == 5 and got == list(range(got[0], got[0] + 5))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill()


def test_dynamic_node_without_dataflow_gets_clear_error(tmp_path, endpoint):
    import subprocess
    import sys
    script = tmp_path / "lost.py"
    script.write_text("from dora_zenoh import Node\nNode('ghost')\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, DORA_ZENOH_ENDPOINT=endpoint))
    assert res.returncode == 1
    assert "no running dataflow has a dynamic node 'ghost'" in res.stderr


def test_2022_receiver_gets_bytes_of_arrow_values(flow):
    """A today's-API sender and a 2022-API receiver: numbers arrive as their packed bytes,
    other Arrow values as the Arrow IPC stream that travelled."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [ints, strings]
          - id: rx
            path: rx.py
            inputs:
              ints: tx/ints
              strings: tx/strings
    """)
    flow.write("tx.py", """
        import pyarrow as pa
        from dora import Node
        node = Node()
        node.send_output("ints", pa.array([1, -2, 3], type=pa.int32()).slice(1))
        node.send_output("strings", pa.array(["a", "bc"]))
    """)
    flow.write("rx.py", """
        import json
        import pyarrow as pa
        from dora import Node
        got = {}
        for input_id, value in Node():
            if input_id == "ints":
                got[input_id] = value.hex()
            else:
                got[input_id] = pa.ipc.open_stream(value).read_next_batch().column(0).to_pylist()
        json.dump(got, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    import struct
    assert flow.result() == {"ints": struct.pack("<ii", -2, 3).hex(), "strings": ["a", "bc"]}


def test_2022_next_unpacking_form(flow):
    """`input_id, value = node.next()` (the original docs' form) gets bytes, not Arrow or events."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [string]
          - id: rx
            path: rx.py
            inputs:
              string: tx/string
    """)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        node.send_output("string", b"first")
        node.send_output("string", b"second")
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        node = Node()
        got = []
        for _ in range(2):
            input_id, value = node.next()
            got.append([input_id, type(value).__name__, value.decode()])
        got.append(node.next())   # the stream has ended: None, no INPUT_CLOSED/STOP events
        json.dump(got, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert flow.result() == [["string", "bytes", "first"], ["string", "bytes", "second"], None]


def test_forwarding_a_value_sends_it_unchanged(flow):
    """A node that forwards `event["value"]` (a real pyarrow array, as with dora-rs) sends the
    bytes it received, unchanged, of every size (the relay sends Zenoh's own buffer on)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: source
            path: source.py
            outputs: [data]
          - id: relay
            path: relay.py
            inputs:
              data: {source: source/data, queue_size: 100}
            outputs: [data]
          - id: sink
            path: sink.py
            inputs:
              data: {source: relay/data, queue_size: 100}
    """)
    flow.write("source.py", """
        from dora import Node
        node = Node()
        for i in range(20):
            node.send_output("data", b"x" * i)
    """)
    flow.write("relay.py", """
        import json, sys
        from dora import Node
        node = Node()
        sizes = []
        for event in node:
            if event["type"] == "INPUT":
                sizes.append(len(event["value"]))
                node.send_output("data", event["value"])
        json.dump({"sizes": sizes, "pyarrow": "pyarrow" in sys.modules}, open("relay.json", "w"))
    """)
    flow.write("sink.py", """
        import json
        from dora import Node
        node = Node()
        got = [bytes(e["value"].to_numpy()) for e in node if e["type"] == "INPUT"]
        json.dump([g.decode() for g in got], open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    relay = flow.result("relay.json")
    assert relay == {"sizes": list(range(20)), "pyarrow": True}
    assert flow.result() == ["x" * i for i in range(20)]


def test_event_is_a_dict_like_doras(flow):
    """dora's events are dicts: ours are too (lookups are C-level dict reads on the hot path),
    and the keys that are built on first use still behave like stored ones."""
    flow.write("dataflow.yml", """
        nodes:
          - id: sender
            path: sender.py
            outputs: [data]
          - id: probe
            path: probe.py
            inputs:
              data: sender/data
    """)
    flow.write("sender.py", """
        from dora import Node
        node = Node()
        node.send_output("data", b"abc", {"frame": 7})
    """)
    flow.write("probe.py", """
        import json
        from dora import Node
        node = Node()
        event = next(iter(node))
        stamp = event["metadata"].pop("timestamp")
        try:
            event["nope"]
            missing = "no KeyError"
        except KeyError:
            missing = "KeyError"
        out = {
            "is_dict": isinstance(event, dict),
            "keys": sorted(dict(event)),
            "spread": sorted({**event}),
            "len": len(event),
            "type": event["type"], "id": event["id"], "kind": event["kind"],
            "metadata": event.get("metadata"), "meta_item": event["metadata"],
            "value_in": "value" in event, "value": bytes(event["value"].to_numpy()).decode(),
            "get_default": event.get("nope", "dflt"), "missing": missing,
            "same_event_equal": event == event, "hashable": isinstance(hash(event), int),
            "timestamp": type(stamp).__name__ + " " + str(stamp.tzinfo),
        }
        json.dump(out, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    out = flow.result()
    keys = ["id", "kind", "metadata", "type", "value"]
    assert out == {"is_dict": True, "keys": keys, "spread": keys, "len": 5, "type": "INPUT", "id": "data",
                   "kind": "dora", "metadata": {"frame": 7}, "meta_item": {"frame": 7}, "value_in": True,
                   "value": "abc", "get_default": "dflt", "missing": "KeyError", "same_event_equal": True,
                   "hashable": True, "timestamp": "datetime UTC"}


def test_values_are_built_when_read_then_with_their_events(flow):
    """A node that never reads a value builds no array (a counter, a filter on ``event["id"]``);
    one that has read a value gets the next ones built with their events (its reads are plain
    dict lookups), and every value is the bytes sent, in order, on both inputs' paths (a
    ``drop_oldest`` input from the ring, a ``block`` one from its FIFO)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [a, b]
          - id: counter
            path: probe.py
            inputs: {a: tx/a, b: {source: tx/b, queue_policy: block}}
            env: {READ_FROM: "99", OUT: counter.json}
          - id: reader
            path: probe.py
            inputs: {a: tx/a, b: {source: tx/b, queue_policy: block}}
            env: {READ_FROM: "2", OUT: reader.json}
    """)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        for i in range(6):
            node.send_output("a", b"a%d" % i)
            node.send_output("b", b"b%d" % i)
    """)
    flow.write("probe.py", """
        import json, os
        from dora import Node
        node = Node()
        read_from = int(os.environ["READ_FROM"])
        seen = []  # [input, value built before this node read it, the value read]
        for event in node:
            if event["type"] == "INPUT":
                built = dict.__contains__(event, "value")
                read = bytes(event["value"].to_numpy()).decode() if len(seen) >= read_from else None
                seen.append([event["id"], built, read])
        json.dump(seen, open(os.environ["OUT"], "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    counter = flow.result("counter.json")
    assert len(counter) == 12 and not any(built for _, built, _ in counter), counter
    reader = flow.result("reader.json")
    assert [built for _, built, _ in reader] == [False, False, False] + [True] * 9, reader
    assert [read is None for _, _, read in reader] == [True, True] + [False] * 10, reader
    for key in "ab":
        read = [value for input_id, _, value in reader if input_id == key and value is not None]
        assert read == [f"{key}{i}" for i in range(6 - len(read), 6)], reader


def write_tx_to_rx(flow) -> None:
    """dataflow.yml: node ``tx`` (tx.py) sends on ``out``, node ``rx`` (rx.py) reads it as ``data``."""
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            outputs: [out]
          - id: rx
            path: rx.py
            inputs:
              data: tx/out
    """)


def test_send_output_of_none_before_any_input_is_an_empty_message(flow):
    """send_output(o, None) is an empty message, as ``data``'s default b"" is; before any input
    had arrived it raised AttributeError ('NoneType' object has no attribute 'payload'): None was
    taken for "the value just received", forwarded from Zenoh's buffer of no sample."""
    write_tx_to_rx(flow)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        node.send_output("out", None)
        node.send_output("out", b"after")
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        got = [bytes(e["value"].to_numpy(zero_copy_only=False)).decode() for e in Node() if e["type"] == "INPUT"]
        json.dump(got, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert flow.result() == ["", "after"]


def test_metadata_that_cannot_be_sent_is_refused_by_the_sender(flow):
    """send_output's metadata must be a dict JSON can carry: a str was sent as "params", which the
    reader then dropped as malformed (not dora-zenoh's); a circular dict raised ValueError after the
    message was numbered, so the reader counted one lost on the way. Now the sender raises, naming
    send_output, and the reader gets the good message alone, with nothing dropped or lost."""
    write_tx_to_rx(flow)
    flow.write("tx.py", """
        import json
        from dora import Node
        node = Node()
        circular = {}
        circular["self"] = circular
        errors = []
        for metadata in ("notadict", circular):
            try:
                node.send_output("out", b"bad", metadata)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        node.send_output("out", b"good", {"n": 1})
        json.dump(errors, open("errors.json", "w"))
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        node = Node()
        got = [[bytes(e["value"].to_numpy(zero_copy_only=False)).decode(), e["metadata"]["n"]]
               for e in node if e["type"] == "INPUT"]
        json.dump({"got": got, "dropped": node._inputs["data"].dropped}, open("result.json", "w"))
    """)
    res = flow.run()
    assert res.returncode == 0, res.stderr
    assert flow.result("errors.json") == [
        "send_output: metadata must be a dict of parameters, not a str",
        "send_output: metadata cannot be sent as JSON (Circular reference detected)"]
    assert flow.result() == {"got": [["good", 1]], "dropped": 0}
    log = res.stdout + res.stderr
    assert "malformed" not in log and "lost" not in log


def test_a_run_whose_name_another_run_of_this_machine_holds_takes_the_next(flow):
    """Two runs of one YAML started at the same moment both kept the name in 1 of 20 tries (each
    asked the network before the other had declared it) and read each other's messages. A run of
    this machine holds its name's lock file from the moment it picks it: a run that finds the lock
    held takes NAME-2, although nothing on the network says the name is taken yet."""
    from dora_zenoh.supervision.namelock import NameLock

    flow.write("dataflow.yml", """
        nodes:
          - id: once
            path: once.py
    """)
    flow.write("once.py", "from dora import Node\nNode()\n")
    held = NameLock(flow.endpoint, "dora", flow.name)  # what a run starting at this moment holds
    assert held.take()
    try:
        res = cli("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint, cwd=flow.folder)
    finally:
        held.release()
    assert res.returncode == 0, res.stderr
    assert f"dataflow '{flow.name}-2'" in res.stderr and "Traceback" not in res.stderr, res.stderr
    again = cli("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint, cwd=flow.folder)
    assert again.returncode == 0 and f"dataflow '{flow.name}' " in again.stderr, again.stderr  # released: its own
