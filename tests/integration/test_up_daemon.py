"""`up --machine-id`: the coordinator and this machine's daemon, which runs the nodes without
`deploy`, so that they outlive the coordinator (issue: "`up` starts the coordinator and a local
daemon"). Real processes: the CLI, the coordinator, the daemon and a node."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
from conftest import cli, start_cli, wait_for

from dora_zenoh.supervision.client import coordinator_running


def _ticks(path: Path) -> tuple[int, int] | None:
    try:
        pid, n = path.read_text().split()
        return int(pid), int(n)
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int) -> None:
    try:
        psutil.Process(pid).wait(30)
    except psutil.NoSuchProcess:
        pass


def _kill(pid: int | None) -> None:
    if pid and psutil.pid_exists(pid):
        os.kill(pid, signal.SIGKILL)


def test_up_with_a_machine_id_runs_the_nodes_on_a_daemon_that_outlives_the_coordinator(endpoint, tmp_path,
                                                                                        flow_name):
    machine = "box"
    ticks = tmp_path / "ticks.txt"
    (tmp_path / "tick.py").write_text(textwrap.dedent(f"""
        import os
        from dora import Node
        n = 0
        for event in Node():
            if event["type"] == "INPUT":
                n += 1
                with open({str(ticks)!r} + ".tmp", "w") as f:
                    f.write(f"{{os.getpid()}} {{n}}")
                os.replace({str(ticks)!r} + ".tmp", {str(ticks)!r})
            elif event["type"] == "STOP":
                break
    """))
    yml = tmp_path / "flow.yml"
    yml.write_text("nodes:\n  - id: ticker\n    path: tick.py\n    inputs: {tick: dora/timer/millis/50}\n")
    log = str(tmp_path / "coordinator.log")

    def dz(*args: str):
        return cli(*args, "--endpoint", endpoint, cwd=tmp_path)

    assert "--machine-id 'no id!'" in cli("up", "--machine-id", "no id!", "--endpoint", endpoint).stderr
    res = cli("up", "--endpoint", endpoint, "--machine-id", machine, "--log-file", log)
    assert res.returncode == 0, res.stderr
    assert f"daemon of machine '{machine}' running (pid" in res.stdout, res.stdout
    info = wait_for(lambda: coordinator_running(endpoint), what="the coordinator's info")
    coordinator, daemon = info["pid"], info["home_pid"]
    node = None
    try:
        assert info["daemons"] == [machine] and daemon
        res = dz("start", str(yml), "--name", flow_name, "--detach")
        assert res.returncode == 0, res.stderr
        node, _ = wait_for(lambda: _ticks(ticks), what="the node's first tick")
        # the daemon runs it, not the coordinator
        assert daemon in {p.pid for p in psutil.Process(node).parents()}
        assert coordinator not in {p.pid for p in psutil.Process(node).parents()}

        # the coordinator dies: the node keeps running (the same process ticks on)
        os.kill(coordinator, signal.SIGKILL)
        _wait_gone(coordinator)
        _, before = _ticks(ticks) or (0, 0)
        wait_for(lambda: (_ticks(ticks) or (0, 0))[1] > before + 5, what="ticks after the coordinator died")
        assert _ticks(ticks)[0] == node and psutil.pid_exists(node)

        # `up` again: the same daemon links back, and the dataflow is adopted
        res = cli("up", "--endpoint", endpoint, "--machine-id", machine, "--log-file", log)
        assert res.returncode == 0, res.stderr
        assert f"daemon of machine '{machine}' running (pid {daemon})" in res.stdout, res.stdout
        coordinator = coordinator_running(endpoint)["pid"]
        wait_for(lambda: flow_name in dz("list").stdout, what="the dataflow adopted")
        res = cli("up", "--endpoint", endpoint, "--machine-id", "other")
        assert res.returncode != 0 and "not --machine-id 'other'" in res.stderr, res.stderr

        res = dz("stop", flow_name)
        assert res.returncode == 0, res.stderr
        _wait_gone(node)
        res = dz("down")
        assert res.returncode == 0, res.stderr
        assert f"daemon of machine '{machine}' stopped" in res.stdout, res.stdout
        assert not psutil.pid_exists(daemon) and not psutil.pid_exists(coordinator)
    finally:
        for pid in (coordinator, daemon, node):
            _kill(pid)



def test_start_shows_the_lines_of_the_daemons_nodes_and_a_dynamic_node_joins(endpoint, tmp_path, flow_name):
    """With `up --machine-id`, `start` (attached) prints the lines of the nodes the daemon runs,
    from the first, and its summary counts them; a dynamic node joins through the coordinator."""
    machine = "box"
    (tmp_path / "talk.py").write_text(textwrap.dedent("""
        import pyarrow as pa
        from dora import Node
        node = Node()
        for i, event in enumerate(node):
            if event["type"] == "INPUT":
                node.send_output("n", pa.array([i]))
                print("sent", i, flush=True)
                if i >= 40:
                    break
    """))
    yml = tmp_path / "flow.yml"
    yml.write_text("nodes:\n  - id: talk\n    path: talk.py\n    inputs: {tick: dora/timer/millis/100}\n"
                   "    outputs: [n]\n  - id: dyn\n    path: dynamic\n    inputs: {n: talk/n}\n")
    res = cli("up", "--endpoint", endpoint, "--machine-id", machine, "--log-file", str(tmp_path / "c.log"))
    assert res.returncode == 0, res.stderr
    info = coordinator_running(endpoint)
    attach = None
    try:
        env = {**os.environ, "DORA_ZENOH_ENDPOINT": endpoint}
        attach = subprocess.Popen([sys.executable, "-m", "dora_zenoh", "start", str(yml), "--name", flow_name],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: flow_name in cli("list", "--endpoint", endpoint).stdout, what="the dataflow")
        dyn = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from dora_zenoh import Node
            for event in Node("dyn", dataflow={flow_name!r}):
                if event["type"] == "INPUT":
                    print("dyn got", event["value"].to_pylist(), flush=True)
                    break
        """)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert dyn.returncode == 0 and "dyn got [" in dyn.stdout, dyn.stdout + dyn.stderr
        out, _ = attach.communicate(timeout=60)
        assert attach.returncode == 0, out
        assert "[talk] sent 0\n" in out and "[talk] sent 40\n" in out, out
        assert f"finished: 1 node(s) succeeded, 1 on machine '{machine}'" in out, out
    finally:
        if attach is not None and attach.poll() is None:
            attach.kill()
        res = cli("down", "--endpoint", endpoint)
        for pid in (info["pid"], info["home_pid"]) if info else ():
            _kill(pid)
    assert res.returncode == 0 and f"daemon of machine '{machine}' stopped" in res.stdout, res.stdout


def test_plain_up_runs_nodes_on_its_daemon_in_the_folder_itself(coord, flow):
    """Plain `up` starts this machine's daemon (named after the host), which runs the nodes in the
    dataflow's own folder although a file there keeps changing (a running program's output):
    it is the same folder, never shipped."""
    machine = coord.info()["home"]
    assert machine and coord.daemons, "plain `up` started no daemon"
    flow.write("dataflow.yml", """
        nodes:
          - id: once
            path: once.py
    """)
    flow.write("once.py", """
        import os
        from dora import Node
        Node()
        open("ran-here.txt", "w").write(str(os.getppid()))
    """)
    stop = threading.Event()

    def churn() -> None:  # what a node of another dataflow writing its results looks like
        n = 0
        while not stop.is_set():
            (flow.folder / "results.json").write_text(str(n) * (n % 50))
            n += 1
            time.sleep(0.001)

    writer = threading.Thread(target=churn, daemon=True)
    writer.start()
    try:
        res = coord("start", str(flow.yaml), "--name", flow.name)
        assert res.returncode == 0, res.stderr
    finally:
        stop.set()
        writer.join(5)
    assert "finished: 1 node(s) succeeded" in res.stderr, res.stderr
    # in this folder (not a copy), a child of the daemon
    assert int((flow.folder / "ran-here.txt").read_text()) == coord.daemons[0].pid
    assert "runs from its copy" not in coord.log_file.read_text()


def test_the_coordinator_starts_ups_daemon_again_when_it_dies(coord, flow):
    """SIGKILL of `up`'s daemon: its nodes end (its reaper), the coordinator starts the daemon
    again, and the node with `restart_policy: always` runs again, without anyone typing `up`."""
    flow.write("dataflow.yml", """
        nodes:
          - id: keep
            path: keep.py
            inputs: {tick: dora/timer/millis/100}
            restart_policy: always
    """)
    flow.write("keep.py", """
        import os
        from dora import Node
        for event in Node():
            if event["type"] == "INPUT":
                open(f"keep-{os.getpid()}.pid", "w").close()
    """)
    assert coord("start", str(flow.yaml), "--name", flow.name, "--detach").returncode == 0
    first = wait_for(lambda: list(flow.folder.glob("keep-*.pid")), what="the node")
    old = coord.daemons[0]
    old.kill()
    old.wait(10)
    info = wait_for(lambda: (i := coord.info()) and i.get("home_pid") not in (None, old.pid)
                    and i["daemons"] == [i["home"]] and i, what="a new daemon")
    coord.daemons.append(psutil.Process(info["home_pid"]))
    assert coord.daemons[-1].parent().pid == coord.pid  # the coordinator started it
    wait_for(lambda: set(flow.folder.glob("keep-*.pid")) - set(first), what="the node restarted")
    log = coord.log_file.read_text()
    assert f"the daemon of machine '{info['home']}' (pid {old.pid}) is gone: started it again" in log, log
    row = coord.list(flow.name)
    assert row["status"] == "running" and row["nodes"][0]["restarts"] == 1, row
    res = coord("down")
    assert res.returncode == 0 and f"daemon of machine '{info['home']}' stopped" in res.stdout, res.stdout
    assert not coord.daemons[-1].is_running()


def test_nodes_that_died_with_ups_daemon_make_the_dataflow_fail(coord, flow):
    """SIGKILL of `up`'s daemon, its node without a restart policy: once the new daemon reports
    without it, the dataflow ends `failed`, naming the node and why, and `start --attach` exits 1.
    It stayed `degraded` with the node `lost` for good, and a later `stop` made it `stopped`
    (exit 0) (a helper's runs, 4 Dec)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: once
            path: once.py
            inputs: {tick: dora/timer/millis/100}
    """)
    flow.write("once.py", """
        import os
        from dora import Node
        for event in Node():
            if event["type"] == "INPUT":
                open(f"once-{os.getpid()}.pid", "w").close()
    """)
    attached = start_cli("start", str(flow.yaml), "--name", flow.name, "--endpoint", coord.endpoint,
                         cwd=flow.folder)
    try:
        wait_for(lambda: list(flow.folder.glob("once-*.pid")), what="the node")
        old = coord.daemons[0]
        old.kill()
        old.wait(10)
        out, err = attached.communicate(timeout=60)
    finally:
        attached.kill()
    info = coord.info()
    coord.daemons.append(psutil.Process(info["home_pid"]))
    assert attached.returncode == 1, out + err
    row = coord.list(flow.name)
    assert row["status"] == "failed", row
    assert "node 'once'" in err and "ended with its machine's daemon, which died" in err, err


def test_a_misspelt_machine_is_named_with_its_line_and_the_daemon_it_resembles(coord, flow):
    """`deploy: {machine: ...}` with a typo read like a machine that was down: `check` names the
    line and the connected daemon it resembles, `start` the daemon too, and nothing starts."""
    machine = coord.info()["home"]
    typo = machine + "2"  # close to it whatever the host's name (a two-letter one too)
    flow.write("dataflow.yml", f"""
        nodes:
          - id: once
            path: once.py
            deploy:
              machine: {typo}
    """)
    flow.write("once.py", "from dora import Node\nNode()\n")
    res = coord("check", str(flow.yaml))
    assert res.returncode == 1, res.stdout
    assert (f"{flow.yaml}:6: node 'once': no daemon of machine '{typo}' is connected to the coordinator "
            f"(did you mean '{machine}'?)") in res.stderr, res.stderr
    res = coord("start", str(flow.yaml), "--name", flow.name)
    assert res.returncode == 1
    assert f"has no daemon connected to this coordinator (did you mean '{machine}'?)" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (flow.folder / "out").exists()
