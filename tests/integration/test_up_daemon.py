"""`up --machine-id`: the coordinator and this machine's daemon, which runs the nodes without
`deploy`, so that they outlive the coordinator (issue: "`up` starts the coordinator and a local
daemon"). Real processes: the CLI, the coordinator, the daemon and a node."""
from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import psutil
from conftest import cli, wait_for

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
        assert res.returncode != 0 and "not with --machine-id 'other'" in res.stderr, res.stderr

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

