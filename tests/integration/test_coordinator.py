"""The coordinator and its control plane: real coordinator processes, each on its own endpoint.

Every wait is bounded; every coordinator is taken down (then killed) when its test ends.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import psutil
from conftest import (
    ROOT,
    Coord,
    cli,
    long_lived_pids,
    loopback_daemon,
    start_cli,
    wait_for,
    write_long_lived_flow,
)

from dora_zenoh.supervision.client import coordinator_running

FOREVER = textwrap.dedent("""
    import os
    from dora import Node
    node = Node()
    open(f"{os.environ['DORA_NODE_ID']}.pid", "w").write(str(os.getpid()))
    print("ready", flush=True)
    for event in node:
        if event["type"] == "STOP":
            print("got STOP", flush=True)
            break
""")

RECORDER = textwrap.dedent("""
    import json, os
    from dora import Node
    events = []
    for event in Node():
        entry = {"type": event["type"], "id": event["id"]}
        if event["type"] == "INPUT":
            entry["data"] = event.raw.decode()
        events.append(entry)
    json.dump(events, open(os.environ.get("OUT", "result.json"), "w"))
""")


def write_counter_flow(flow) -> None:
    """counter (a 20 ms timer; prints "counted to 3") -> idle (runs until STOP)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: counter
            path: counter.py
            inputs:
              tick: dora/timer/millis/20
            outputs: [count]
          - id: idle
            path: idle.py
            inputs:
              count: counter/count
    """)
    flow.write("counter.py", """
        from dora import Node
        node = Node()
        n = 0
        for event in node:
            if event["type"] == "INPUT":
                node.send_output("count", str(n).encode())
                n += 1
                if n == 3:
                    print("counted to 3", flush=True)
    """)
    flow.write("idle.py", FOREVER)


def test_up_start_list_logs_stop_restart_clean_down(coord, flow):
    second = coord("up")
    assert second.returncode == 0 and "already running" in second.stdout
    write_counter_flow(flow)
    res = coord("start", str(flow.yaml), "--name", flow.name, "--detach")
    assert res.returncode == 0, res.stderr
    assert f"dataflow '{flow.name}' started" in res.stderr
    wait_for(lambda: (flow.folder / "idle.pid").exists(), what="nodes to start")

    rows = coord.list()
    assert [(r["name"], r["status"], r["nodes"]) for r in rows] == [(flow.name, "running", 2)]
    table = coord("list").stdout
    assert table.splitlines()[0].split() == ["NAME", "ID", "STATUS", "UPTIME", "NODES", "CPU%", "RSS"]
    detail = wait_for(lambda: (d := coord.list(flow.name)) and d["nodes"][0]["sent"].get("count", 0) > 0 and d,
                      what="messages to be counted")
    nodes = {n["id"]: n for n in detail["nodes"]}
    assert nodes["idle"]["pid"] == int((flow.folder / "idle.pid").read_text())
    assert nodes["counter"]["status"] == "running" and nodes["counter"]["restarts"] == 0
    assert "SENT" in coord("list", flow.name).stdout

    logs = wait_for(lambda: "counted to 3" in (r := coord("logs", flow.name, "counter")).stdout and r,
                    what="the log line")
    assert logs.returncode == 0
    # (its last line: "ready", or on a loaded machine a warning of ours that came after it)
    last = coord("logs", flow.name, "idle", "--tail", "1").stdout.strip().splitlines()
    assert len(last) == 1 and (last[0] == "ready" or last[0].startswith("[dora-zenoh]")), last
    assert "has no node 'ghost'" in coord("logs", flow.name, "ghost").stderr

    res = coord("stop", flow.name)
    assert res.returncode == 0, res.stderr
    assert "stopped" in res.stderr
    assert coord.status(flow.name) == "stopped"
    assert "got STOP" in coord("logs", flow.name, "idle").stdout  # logs survive the nodes

    res = coord("restart", flow.name, "--detach")  # (as `start` takes it: restart always returns at once)
    assert res.returncode == 0, res.stderr
    rows = coord.list()
    assert sorted(r["status"] for r in rows) == ["running", "stopped"]
    res = coord("stop", flow.name, "--force")
    assert res.returncode == 0, res.stderr
    res = coord("clean")
    assert res.returncode == 0 and "removed 2" in res.stdout
    assert coord.list() == []

    assert "stopping 0 dataflow(s)" in coord("down").stdout
    psutil.Process(coord.pid).wait(10) if psutil.pid_exists(coord.pid) else None
    gone = coord("list")  # no coordinator and no `run`: nothing to list, and it says why
    assert gone.returncode == 0 and "no coordinator is running" in gone.stdout


def test_a_second_coordinator_says_which_one_runs(coord):
    # The CLI asks (the coordinator itself does not import the client) and exits 1.
    res = coord("coordinator", timeout=30)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"[dora-zenoh] a coordinator is already running on {coord.endpoint} (pid {coord.pid})" in res.stderr
    assert psutil.pid_exists(coord.pid) and coord.info()["pid"] == coord.pid  # the first one is untouched


SLOW_ANSWERS = textwrap.dedent("""
    import sys, time
    from dora_zenoh.supervision.coordinator import Coordinator

    class SlowToAnswer(Coordinator):  # its answers leave late, as under load (CI, stop 32)
        def cmd_down(self, grace=None):
            reply = super().cmd_down(grace)
            time.sleep(1.0)
            return reply

    sys.exit(SlowToAnswer(sys.argv[1]).serve())
""")


def test_down_is_answered_before_the_coordinator_closes(endpoint, tmp_path):
    # `down` with nothing running ends the coordinator at once: it must answer first, and its
    # query must be gone before the interpreter finalizes (SIGABRT, "FATAL: exception not
    # rethrown", in 3 of 72 runs before supervision.answers: see there).
    script = tmp_path / "slow.py"
    script.write_text(SLOW_ANSWERS)
    proc = subprocess.Popen([sys.executable, str(script), endpoint], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: proc.poll() is not None or coordinator_running(endpoint), what="the coordinator to answer")
        assert proc.poll() is None, proc.communicate()[0]
        reaper = threading.Thread(target=proc.wait, daemon=True)  # `down` waits for it to be gone, not a zombie
        reaper.start()
        res = cli("down", "--endpoint", endpoint, timeout=60)
        assert res.returncode == 0, res.stderr
        assert f"stopping 0 dataflow(s), then the coordinator (pid {proc.pid})" in res.stdout
        reaper.join(30)
        assert proc.returncode == 0, proc.stdout.read() if proc.stdout and proc.returncode is not None else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_coordinator_on_a_port_another_program_holds(endpoint):
    host, port = endpoint.split("/", 1)[1].rsplit(":", 1)
    with socket.socket() as other:  # a program that is not a coordinator (nor speaks Zenoh)
        other.bind((host, int(port)))
        other.listen()
        for verb in ("coordinator", "up"):
            res = cli(verb, "--endpoint", endpoint, timeout=30)
            assert res.returncode == 1, res.stdout + res.stderr
            assert f"error: {endpoint} is in use by another program" in res.stderr, verb
            assert "Traceback" not in res.stderr


def test_start_validates_first_and_attached_reports_result(coord, flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: sender
            path: sender.py
            outputs: [data]
          - id: receiver
            path: receiver.py
            inputs:
              data: sender/nope
    """)
    res = coord("start", str(flow.yaml), "--name", flow.name)
    assert res.returncode == 1 and "nope" in res.stderr
    assert coord.list() == []  # nothing started

    flow.write("dataflow.yml", """
        nodes:
          - id: sender
            path: sender.py
            outputs: [data]
          - id: receiver
            path: receiver.py
            inputs:
              data: sender/data
    """)
    flow.write("sender.py", """
        from dora import Node
        node = Node()
        for i in range(3):
            node.send_output("data", str(i).encode())
        print("sent 3")
    """)
    flow.write("receiver.py", """
        import sys
        from dora import Node
        for event in Node():
            if event["type"] == "INPUT":
                print("got", event.raw.decode())
        sys.exit(3)
    """)
    res = coord("start", str(flow.yaml), "--name", flow.name, "--attach")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "[sender] sent 3" in res.stdout
    assert "[receiver] got 2" in res.stdout
    assert "node 'receiver' exited with code 3" in res.stderr
    assert coord.status(flow.name) == "failed"


def test_ctrl_c_while_attached_stops_the_dataflow(coord, flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: waiter
            path: waiter.py
    """)
    flow.write("waiter.py", FOREVER)
    proc = start_cli("start", str(flow.yaml), "--name", flow.name, "--endpoint", coord.endpoint, cwd=flow.folder)
    try:
        wait_for(lambda: (flow.folder / "waiter.pid").exists(), what="the node")
        wait_for(lambda: "ready" in coord("logs", flow.name, "waiter").stdout, what="the node to be ready")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert "[waiter] got STOP" in out
    assert coord.status(flow.name) == "stopped"


def test_ctrl_c_while_a_start_builds_starts_nothing(coord, flow):
    """Ctrl-C on `start --build` while the build runs: the start is undone and nothing starts.
    The CLI used to exit ("Aborted!") while the coordinator went on: the nodes started once the
    build ended, unattached, and the name stayed taken (helpers' runs, 4 Dec, with `--attach`
    during start-up too)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: waiter
            path: waiter.py
            build: sh build.sh
    """)
    flow.write("build.sh", "touch building\nsleep 4\n")
    flow.write("waiter.py", FOREVER)
    proc = start_cli("start", str(flow.yaml), "--build", "--name", flow.name, "--endpoint", coord.endpoint,
                     cwd=flow.folder)
    try:
        wait_for(lambda: (flow.folder / "building").exists(), what="the build to run")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "stopping dataflow" in err, err
    time.sleep(6)  # past the build's end: nothing may start then
    assert not (flow.folder / "waiter.pid").exists()
    assert all(d["status"] not in ("running", "starting") for d in coord.list()
               if d["name"] == flow.name), coord.list()
    again = coord("start", str(flow.yaml), "--name", flow.name, "--detach", cwd=flow.folder)
    assert again.returncode == 0, again.stderr  # the name is free


def test_two_dataflows_at_once_and_unique_names(coord, flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: tx
            path: tx.py
            inputs:
              tick: dora/timer/millis/20
            outputs: [data]
          - id: rx
            path: rx.py
            inputs:
              data: tx/data
    """)
    flow.write("tx.py", """
        from dora import Node
        node = Node()
        for event in node:
            if event["type"] == "INPUT":
                node.send_output("data", node.dataflow_name().encode())
    """)
    flow.write("rx.py", """
        import json
        from dora import Node
        node = Node()
        seen = set()
        for event in node:
            if event["type"] == "INPUT":
                seen.add(event.raw.decode())
                json.dump(sorted(seen), open(f"seen-{node.dataflow_name()}.json", "w"))
    """)
    a, b = flow.name + "-a", flow.name + "-b"
    for name in (a, b):
        res = coord("start", str(flow.yaml), "--name", name, "--detach")
        assert res.returncode == 0, res.stderr
    dup = coord("start", str(flow.yaml), "--name", a, "--detach")
    assert dup.returncode == 1 and f"a dataflow named '{a}' is already running" in dup.stderr
    for name in (a, b):
        wait_for(lambda n=name: (flow.folder / f"seen-{n}.json").exists(), what=f"{name} to flow")
    rows = coord.list()
    assert sorted((r["name"], r["status"]) for r in rows) == [(a, "running"), (b, "running")]
    for name in (a, b):
        assert coord("stop", name).returncode == 0
        assert flow.result(f"seen-{name}.json") == [name]  # no cross-talk


def test_restart_policies(coord, flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: flaky
            path: flaky.py
            outputs: [data]
            restart_policy: on-failure
            max_restarts: 3
            restart_delay: 0.1
          - id: always
            path: always.py
            outputs: [data]
            restart_policy: always
            max_restarts: 2
            restart_delay: 0.1
          - id: fragile
            path: fragile.py
          - id: sink
            path: sink.py
            inputs:
              flaky: flaky/data
              always: always/data
    """)
    flow.write("flaky.py", """
        import os, sys
        from dora import Node
        node = Node()
        n = len(open("flaky.runs").read()) if os.path.exists("flaky.runs") else 0
        open("flaky.runs", "a").write("x")
        node.send_output("data", f"run{n}".encode())
        sys.exit(1 if n < 2 else 0)   # crashes twice, then succeeds
    """)
    flow.write("always.py", """
        from dora import Node
        Node().send_output("data", b"hi")   # exits 0: restarted twice anyway
    """)
    flow.write("fragile.py", "import sys; sys.exit(2)\n")
    flow.write("sink.py", RECORDER)
    res = coord("start", str(flow.yaml), "--name", flow.name)
    assert res.returncode == 1, res.stdout + res.stderr  # fragile (never) failed
    assert "node 'fragile' exited with code 2" in res.stderr
    assert "restarting in 0.1 s (restart 1 of 3, restart_policy: on-failure)" in res.stderr
    events = flow.result()
    assert [e["data"] for e in events if e["id"] == "flaky" and e["type"] == "INPUT"] == ["run0", "run1", "run2"]
    assert [e["data"] for e in events if e["id"] == "always" and e["type"] == "INPUT"] == ["hi"] * 3
    # one INPUT_CLOSED per input, after every message of every restart, then STOP
    closed = [i for i, e in enumerate(events) if e["type"] == "INPUT_CLOSED"]
    assert sorted(events[i]["id"] for i in closed) == ["always", "flaky"]
    closed_at = {events[c]["id"]: c for c in closed}
    for input_id in ("always", "flaky"):  # each input closes after its own last message
        last_input = max(i for i, e in enumerate(events) if e["id"] == input_id and e["type"] == "INPUT")
        assert closed_at[input_id] > last_input
    assert events[-1]["type"] == "STOP"
    nodes = {n["id"]: n for n in coord.list(flow.name)["nodes"]}
    assert (nodes["flaky"]["restarts"], nodes["flaky"]["status"]) == (2, "succeeded")
    assert (nodes["always"]["restarts"], nodes["always"]["status"]) == (2, "succeeded")
    assert (nodes["fragile"]["restarts"], nodes["fragile"]["status"]) == (0, "failed")
    assert "restarting in" in coord("logs", flow.name, "flaky").stdout


def test_stop_kills_node_that_ignores_stop_after_grace(coord, flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: polite
            path: polite.py
          - id: stubborn
            path: stubborn.py
    """)
    flow.write("polite.py", FOREVER)
    flow.write("stubborn.py", """
        import signal, time
        from dora import Node
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        node = Node()
        open("stubborn.pid", "w").write("x")
        while True:
            time.sleep(0.1)
    """)
    assert coord("start", str(flow.yaml), "--name", flow.name, "--detach").returncode == 0
    wait_for(lambda: (flow.folder / "stubborn.pid").exists() and (flow.folder / "polite.pid").exists(),
             what="nodes")
    res = coord("stop", flow.name, "--grace", "1s")
    assert res.returncode == 0, res.stderr
    # (on a daemon, `up`'s default, the line names its machine)
    assert re.search(r"node 'stubborn' (on machine '[^']+' )?did not stop within the 1 s grace period and was "
                     r"killed", res.stderr), res.stderr
    d = coord.list(flow.name)
    assert d["status"] == "stopped"
    nodes = {n["id"]: n["status"] for n in d["nodes"]}
    assert nodes == {"polite": "succeeded", "stubborn": "killed"}


def test_killing_the_coordinator_leaves_nothing_running(coord, flow):
    # Without a daemon (`up --no-daemon`) the coordinator runs the nodes: they end with it.
    # (`up`'s daemon keeps them running instead: test_up_daemon.)
    assert coord("down").returncode == 0
    coord.up("--no-daemon")
    write_long_lived_flow(flow)
    assert coord("start", str(flow.yaml), "--name", flow.name, "--detach").returncode == 0
    pids = long_lived_pids(flow)
    family = [psutil.Process(coord.pid)] + psutil.Process(coord.pid).children(recursive=True)
    procs = [psutil.Process(p) for p in pids] + family[1:]
    os.kill(coord.pid, signal.SIGKILL)
    gone, alive = psutil.wait_procs(procs + family[:1], timeout=30)
    assert not alive, f"left running: {alive}"
    coord.up()  # a new coordinator starts clean
    assert coord.list() == []


def test_dynamic_node_joins_leaves_and_rejoins(coord, flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: source
            path: source.py
            inputs:
              tick: dora/timer/millis/50
            outputs: [data]
          - id: plot
            path: dynamic
            inputs:
              data: source/data
            outputs: [ack]
          - id: sink
            path: sink.py
            inputs:
              ack: plot/ack
    """)
    flow.write("source.py", """
        from dora import Node
        node = Node()
        n = 0
        for event in node:
            if event["type"] == "INPUT":
                node.send_output("data", str(n).encode())
                n += 1
    """)
    flow.write("sink.py", RECORDER)
    flow.write("plot.py", """
        import sys
        from dora_zenoh import Node
        node = Node("plot", dataflow=sys.argv[1])
        got = 0
        for event in node:
            if event["type"] == "INPUT":
                node.send_output("ack", sys.argv[2].encode())
                got += 1
                if got == 3:
                    break
    """)
    assert coord("start", str(flow.yaml), "--name", flow.name, "--detach").returncode == 0
    env = dict(os.environ, DORA_ZENOH_ENDPOINT=coord.endpoint)
    for visit in ("first", "second"):  # join, leave, join again
        dyn = subprocess.run([sys.executable, "plot.py", flow.name, visit], cwd=flow.folder, env=env,
                             capture_output=True, text=True, timeout=60)
        assert dyn.returncode == 0, dyn.stderr
    wait_for(lambda: coord("logs", flow.name, "sink").stdout is not None and coord.status(flow.name) == "running",
             what="the dataflow")
    res = coord("stop", flow.name)
    assert res.returncode == 0, res.stderr
    events = flow.result()
    inputs = [e for e in events if e["type"] == "INPUT"]
    assert [e["data"] for e in inputs] == ["first"] * 3 + ["second"] * 3
    assert [e["type"] for e in events[:6]] == ["INPUT"] * 6  # no INPUT_CLOSED when plot left
    assert events[-1]["type"] == "STOP"


def test_ros_like_talker_and_listener(tmp_path, endpoint):
    env = dict(os.environ, DORA_ZENOH_ENDPOINT=endpoint, COUNT="5")
    folder = ROOT / "examples" / "ros-like"
    talker = subprocess.Popen([sys.executable, str(folder / "talker.py")], env=dict(env, COUNT="600"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listener = subprocess.run([sys.executable, str(folder / "listener.py")], env=env, capture_output=True,
                                  text=True, timeout=60)
    finally:
        talker.kill()
        talker.communicate(timeout=10)
    assert listener.returncode == 0, listener.stderr
    heard = [line for line in listener.stdout.splitlines() if line.startswith("heard: hello ")]
    assert len(heard) == 5
    numbers = [int(line.rsplit(" ", 1)[1]) for line in heard]
    assert numbers == list(range(numbers[0], numbers[0] + 5))


def test_list_shows_cpu_of_a_busy_node(coord, flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: burner
            path: burner.py
          - id: sleeper
            path: sleeper.py
    """)
    flow.write("burner.py", """
        import time
        from dora import Node
        node = Node()
        open("burner.pid", "w").write("x")
        while node.next(timeout=0)["type"] == "ERROR":  # dora-rs's "Receiver timed out"
            sum(range(20000))
    """)
    flow.write("sleeper.py", FOREVER)
    assert coord("start", str(flow.yaml), "--name", flow.name, "--detach").returncode == 0
    wait_for(lambda: (flow.folder / "burner.pid").exists(), what="the burner")

    def busy():
        nodes = {n["id"]: n for n in coord.list(flow.name)["nodes"]}
        return nodes["burner"]["cpu"] > 20 and nodes["burner"]["cpu"] > nodes["sleeper"]["cpu"] and nodes
    nodes = wait_for(busy, what="the burner's CPU to show")
    assert nodes["burner"]["rss"] > 1_000_000

    def summed():
        # Two calls, two samples: on a loaded machine the burner's share swings (79 % then 33 %
        # in one CI run), so the dataflow's row is compared with a node's sample taken just before.
        burner = {n["id"]: n for n in coord.list(flow.name)["nodes"]}["burner"]
        row = coord.list()[0]
        return row["cpu"] >= burner["cpu"] * 0.5 and row["rss"] > burner["rss"]
    wait_for(summed, what="the dataflow's row to sum its nodes' CPU and memory")
    assert coord("stop", flow.name, "--grace", "2s").returncode == 0


def test_list_counts_a_closed_runs_messages(coord, flow):
    """A closed run (--secure) lives on a network of its own: the coordinator asks its nodes for
    their counts through that run's session (its hub's session has no link to them)."""
    write_counter_flow(flow)
    res = coord("start", str(flow.yaml), "--name", flow.name, "--detach", "--secure")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: (d := coord.list(flow.name)) and d["nodes"][0]["sent"].get("count", 0) > 0,
             what="a closed run's messages to be counted")
    assert coord("stop", flow.name).returncode == 0


def test_nodes_do_not_inherit_the_coordinators_zenoh_runtime(coord, flow):
    """The coordinator takes 24 Zenoh receive threads for itself (ZENOH_RUNTIME); its nodes get
    the one-thread runtime a node gets under `run` (they inherited the coordinator's)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: probe
            path: probe.py
    """)
    flow.write("probe.py", """
        import os
        from dora import Node
        Node()
        open("runtime.txt", "w").write(os.environ.get("ZENOH_RUNTIME", "-"))
    """)
    res = coord("start", str(flow.yaml), "--name", flow.name)
    assert res.returncode == 0, res.stderr
    runtime = (flow.folder / "runtime.txt").read_text()
    assert "worker_threads:24" not in runtime and "worker_threads:1" in runtime, runtime


def test_the_control_directory_goes_with_the_coordinator(endpoint, tmp_path):
    """`down` leaves no `ctl-PORT` directory behind: one per endpoint ever used piled up in
    /tmp/dora-zenoh-UID (37 after one run of the test suite, 5 Dec). The user's directory stays."""
    from dora_zenoh.security import control

    c = Coord(endpoint, tmp_path / "coordinator.log")
    c.up()
    path = control.socket_path(endpoint)
    try:
        assert path.is_socket()
    finally:
        c.teardown()
    wait_for(lambda: not path.parent.exists(), 20, "the control directory to go")
    assert path.parent.parent.is_dir()


def test_machines_lists_each_daemon_connected_or_lost_with_its_nodes(coord, tmp_path, flow_name):
    """`dora-zenoh machines`: which daemons joined, this machine's marked, their labels, the
    running dataflows with nodes there; a daemon killed shows lost (real daemons on loopback)."""
    (tmp_path / "tick.py").write_text("from dora import Node\nfor event in Node():\n    pass\n")
    yml = tmp_path / "flow.yml"
    yml.write_text(textwrap.dedent("""
        nodes:
          - id: here
            path: tick.py
            inputs: {tick: dora/timer/millis/100}
          - id: there
            path: tick.py
            deploy: {machine: gpu}
            inputs: {tick: dora/timer/millis/100}
    """))
    with loopback_daemon(coord, tmp_path, "gpu", None, "--labels", "gpu=true") as daemon:
        res = coord("start", str(yml), "--name", flow_name, "--detach", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        try:
            def rows() -> dict:
                out = coord("machines", "--json")
                assert out.returncode == 0, out.stderr
                return {m["machine"]: m for m in json.loads(out.stdout)}

            wait_for(lambda: rows().get("gpu", {}).get("nodes") == 1, 30, "gpu's node in `machines`")
            machines = rows()
            home = next(m for m in machines.values() if m["home"])
            assert home["status"] == "connected" and home["dataflows"] == [flow_name] and home["nodes"] == 1
            gpu = machines["gpu"]
            assert gpu["status"] == "connected" and gpu["labels"] == {"gpu": "true"} and gpu["pid"] == daemon.pid
            assert gpu["dataflows"] == [flow_name] and not gpu["home"]
            table = coord("machines")
            assert table.returncode == 0 and f"{home['machine']} (here)" in table.stdout and "gpu=true" in table.stdout
            daemon.kill()
            daemon.wait(10)
            wait_for(lambda: rows()["gpu"]["status"] == "lost", 30, "the killed daemon shown lost")
        finally:
            coord("stop", flow_name, "--grace", "2s")
