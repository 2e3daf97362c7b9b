"""The CLI around the watching tools (issue 22): `list`/`logs` see `run` dataflows, degraded status,
--fail-fast, `start --detach` prints the id on stdout."""
from __future__ import annotations

import json
import os
import subprocess

from conftest import Flow, cli, wait_for

FLOW = """
name: {name}
{extra}
nodes:
  - id: steady
    path: steady.py
  - id: broken
    path: broken.py
"""
STEADY = """
import time
from dora import Node
node = Node()
print("steady up", flush=True)
for event in node:
    if event["type"] == "STOP":
        break
"""
BROKEN = """
import sys
print("broken: giving up", flush=True)
sys.exit(3)
"""


def write(flow: Flow, extra: str = "") -> None:
    flow.write("dataflow.yml", FLOW.format(name=flow.name, extra=extra))
    flow.write("steady.py", STEADY)
    flow.write("broken.py", BROKEN)


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(2)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def test_list_and_logs_see_a_run_dataflow_and_its_degraded_status(flow: Flow):
    write(flow)
    proc = flow.start()
    try:
        def degraded():
            res = cli("list", "--json", "--endpoint", flow.endpoint)
            rows = json.loads(res.stdout) if res.returncode == 0 else []
            mine = [r for r in rows if r["name"] == flow.name]
            return mine if mine and mine[0]["status"] == "degraded" else None
        (row,) = wait_for(degraded, timeout=40, what="the run dataflow listed as degraded")
        assert row["source"] == "run" and row["nodes"] == 2
        one = json.loads(cli("list", flow.name, "--json", "--endpoint", flow.endpoint).stdout)
        states = {n["id"]: n["status"] for n in one["nodes"]}
        assert states == {"steady": "running", "broken": "failed"}
        text = cli("list", "--endpoint", flow.endpoint)
        assert flow.name in text.stdout and "degraded" in text.stdout
        logs = wait_for(lambda: (r := cli("logs", flow.name, "steady", "--endpoint", flow.endpoint)).returncode == 0
                        and "steady up" in r.stdout and r, timeout=20, what="steady's log")
        assert "steady up" in logs.stdout
        bad = cli("logs", flow.name, "nope", "--endpoint", flow.endpoint)
        assert bad.returncode == 1 and "has no node 'nope'" in bad.stderr
    finally:
        stop(proc)


def test_fail_fast_stops_the_dataflow(flow: Flow):
    write(flow)
    res = flow.run("--fail-fast", timeout=60)
    assert res.returncode == 1
    assert "fail-fast: node 'broken' failed, stopping the dataflow" in res.stderr
    write(flow, extra="fail_fast: true")  # the YAML option does the same
    res = flow.run(timeout=60)
    assert res.returncode == 1 and "fail-fast" in res.stderr


def test_list_with_nothing_running_says_so(endpoint: str):
    res = cli("list", "--endpoint", endpoint)
    assert res.returncode == 0 and "no dataflows" in res.stdout


def test_start_detach_prints_the_id_on_stdout(coord, tmp_path, flow_name):
    flow = Flow(tmp_path, flow_name, coord.endpoint)
    write(flow)
    res = coord("start", str(flow.yaml), "--detach")
    try:
        assert res.returncode == 0, res.stderr
        flow_id = res.stdout.strip()
        assert flow_id and "\n" not in flow_id
        row = wait_for(lambda: (r := coord.list(flow_id)) and r["status"] == "degraded" and r, timeout=40,
                       what="the coordinator's dataflow to be degraded")
        assert row["id"] == flow_id
    finally:
        coord("stop", flow.name, "--grace", "2s")


def test_json_errors_are_json_and_down_with_nothing_running_is_fine(endpoint: str):
    res = cli("node", "list", "--json", "--endpoint", endpoint)
    assert res.returncode == 1 and "nothing is running on" in json.loads(res.stdout)["error"]
    res = cli("topic", "list", "--endpoint", endpoint)
    assert res.returncode == 1 and res.stderr.startswith("error: ")
    res = cli("down", "--endpoint", endpoint)
    assert res.returncode == 0 and "nothing to stop" in res.stdout


def test_second_ctrl_c_says_what_happened(flow: Flow):
    flow.write("dataflow.yml", f"""
        name: {flow.name}
        nodes:
          - id: polite
            path: steady.py
          - id: stubborn
            path: stubborn.py
    """)
    flow.write("steady.py", STEADY)
    flow.write("stubborn.py", """
        import signal, time
        from dora import Node
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        node = Node()
        print("stubborn up", flush=True)
        while True:
            time.sleep(1)  # never reads its events: ignores STOP
    """)
    proc = flow.start("--grace", "60s")
    try:
        def up():
            res = cli("node", "list", "-d", flow.name, "--json", "--endpoint", flow.endpoint)
            return res.returncode == 0 and len(json.loads(res.stdout)) == 2
        wait_for(up, timeout=40, what="both nodes")
        proc.send_signal(2)
        # piped: the grace watcher prints the nodes still running every 3 s; give it a few seconds
        import time
        time.sleep(4.5)
        proc.send_signal(2)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "nodes get 60 s" in err
    assert "waiting" in err and "for: stubborn" in err
    assert "second Ctrl-C: killing stubborn now" in err
    assert "was still running at the second Ctrl-C and was killed" in err
    assert "grace period" not in err


def test_build_runs_each_build_in_the_yaml_folder_and_a_failure_starts_nothing(flow: Flow):
    flow.write("dataflow.yml", f"""
        name: {flow.name}
        nodes:
          - id: first
            path: made.py
            build: echo built > made.txt
          - id: second
            path: steady.py
            build: echo second-build-ran
    """)
    flow.write("steady.py", "print('second ran')\n")
    flow.write("made.py", "print(open('made.txt').read().strip())\n")
    res = cli("build", str(flow.yaml), cwd=flow.folder.parent)
    assert res.returncode == 0, res.stderr
    assert "[second] second-build-ran" in res.stderr and "2 build command(s) succeeded" in res.stderr
    assert (flow.folder / "made.txt").read_text().strip() == "built"
    (flow.folder / "made.txt").unlink()
    res = flow.run("--build")
    assert res.returncode == 0, res.stderr
    assert "[first] built" in res.stdout
    flow.write("dataflow.yml", f"""
        name: {flow.name}
        nodes:
          - id: bad
            path: steady.py
            build: echo compiling; exit 4
          - id: second
            path: steady.py
    """)
    res = flow.run("--build")
    assert res.returncode == 1
    assert "[bad] compiling" in res.stderr
    assert "the build of 'bad' failed (exit code 4)" in res.stderr and "nothing was started" in res.stderr
    assert "second ran" not in res.stdout


def test_a_zenoh_runtime_zenoh_cannot_read_is_named_and_starts_nothing(flow: Flow):
    """Zenoh panics in a process whose ``ZENOH_RUNTIME`` it cannot parse: the node died with a
    Rust panic and a traceback in its log, after the nodes before it had started. The runner
    tries the value first: a clear error naming the node (or the environment), nothing started."""
    flow.write("dataflow.yml", f"""
        name: {flow.name}
        nodes:
          - id: first
            path: mark.py
          - id: tuned
            path: mark.py
            env: {{ZENOH_RUNTIME: "(rx:(worker_threads:abc))"}}
    """)
    flow.write("mark.py", "from dora import Node\nnode = Node()\nopen('ran.txt', 'a').write('ran\\n')\n")
    res = flow.run()
    assert res.returncode != 0
    assert "node 'tuned' (env:): ZENOH_RUNTIME='(rx:(worker_threads:abc))' is not a runtime Zenoh can read" \
        in res.stderr, res.stderr
    assert "Traceback" not in res.stderr + res.stdout and not (flow.folder / "ran.txt").exists()
    flow.write("dataflow.yml", f"""
        name: {flow.name}
        nodes:
          - id: first
            path: mark.py
            env: {{ZENOH_RUNTIME: "(rx:(worker_threads:2))"}}
    """)
    env = {**os.environ, "ZENOH_RUNTIME": "(rx:(worker_thread:2))"}
    res = flow.run(env=env)
    assert res.returncode != 0 and "the environment: ZENOH_RUNTIME='(rx:(worker_thread:2))'" in res.stderr, res.stderr
    assert not (flow.folder / "ran.txt").exists()
    res = flow.run()  # a value Zenoh reads runs
    assert res.returncode == 0, res.stderr
    assert (flow.folder / "ran.txt").read_text() == "ran\n"
