"""Every example and launch file runs with `dora-zenoh run` and does what it says."""
from __future__ import annotations

import shutil
import signal
from pathlib import Path

from conftest import ROOT, RUN_TIMEOUT, cli, start_cli


def copy_example(name: str, tmp_path: Path) -> Path:
    """Run from a copy so the test's logs (out/) stay out of the source tree."""
    dest = tmp_path / name
    shutil.copytree(ROOT / name, dest)
    return dest


def test_static_string_2022_api(tmp_path, endpoint, flow_name):
    folder = copy_example("examples/static-string-2022", tmp_path)
    res = cli("run", str(folder / "dataflow.yml"), "--name", flow_name, "--endpoint", endpoint)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("[printer] From Python, id: string, value: b'Hello World'") == 100
    assert "[printer] printer: received 100 messages" in res.stdout
    logs = list((folder / "out").glob("*/log_printer.txt"))
    assert len(logs) == 1 and "received 100 messages" in logs[0].read_text()


def test_static_string_today_api(tmp_path, endpoint, flow_name):
    folder = copy_example("examples/static-string", tmp_path)
    res = cli("run", str(folder / "dataflow.yml"), "--name", flow_name, "--endpoint", endpoint)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("[printer] id: string")]
    assert lines == [f"[printer] id: string, value: Hello World, index: {i}" for i in range(100)]
    assert "[printer] input string closed" in res.stdout
    assert "[printer] stop" in res.stdout


def test_timer_pipeline(tmp_path, endpoint, flow_name):
    folder = copy_example("examples/timer-pipeline", tmp_path)
    res = cli("run", str(folder / "dataflow.yml"), "--name", flow_name, "--endpoint", endpoint)
    assert res.returncode == 0, res.stderr
    samples = [ln for ln in res.stdout.splitlines() if ln.startswith("[logger] sample ")]
    assert [s.split()[2].rstrip(":") for s in samples] == [str(i) for i in range(25)]
    assert "[logger] logger: 25 readings" in res.stdout


def test_launch_robot(tmp_path, endpoint, flow_name):
    """The robot drives and turns, then stops its motors on shutdown. Stopped (SIGINT) once both
    were seen, whatever the machine's speed, rather than after a fixed time."""
    folder = copy_example("launch", tmp_path)
    proc = start_cli("run", str(folder / "robot.yml"), "--name", flow_name, "--endpoint", endpoint)
    seen: list[str] = []
    lines = iter(proc.stdout.readline, "")
    for line in lines:
        seen.append(line)
        text = "".join(seen)
        if "[motor_driver] motors: driving" in text and "[motor_driver] motors: turning" in text:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    stdout = "".join(seen) + out
    assert proc.returncode == 0, stdout + err
    assert "[motor_driver] motors: driving" in stdout
    assert "[motor_driver] motors: turning" in stdout
    assert "[motor_driver] motors: stop (shutdown)" in stdout
    assert "4 node(s) succeeded" in err


def test_check_accepts_every_shipped_dataflow():
    for yml in [*ROOT.glob("examples/*/dataflow.yml"), ROOT / "launch" / "robot.yml"]:
        res = cli("check", str(yml))
        assert res.returncode == 0, f"{yml}: {res.stderr}"
