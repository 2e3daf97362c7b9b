"""Machines whose wall clocks disagree (needs root and a C compiler).

Machine b's daemon, and with it every node it starts, runs an hour ahead of (or behind) machine
a, where the coordinator runs: wallclock_shift.c, preloaded, shifts the wall clock of b's
processes only (their monotonic clocks, sleeps and timed waits stay true, as on a machine whose
clock is merely set wrong; libfaketime could not: its sleeps failed with EINVAL when it left
the monotonic clock alone, and its timed waits never ended when it did not). Nothing may depend on the clocks agreeing: b must stay
connected past the coordinator's report-silence limit, data must flow both ways across the
link, and ``stop`` must end the dataflow. A message's ``metadata["timestamp"]`` is its
sender's wall clock (docs/machines.md): a's node sees b's messages an hour off, and b's node
a's. The namespace harness is test_machines.py's (cleaned up also on failure).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_machines import Machines, machines, wait_for  # noqa: F401 (machines: a fixture)

pytestmark = pytest.mark.timeout(240)

SKEW_S = 3600  # b's wall clock minus a's
WATCH_S = 12.0  # longer than the coordinator's 8 s of report silence before a daemon is lost


def wallclock_shift_library(folder: Path) -> Path:
    """wallclock_shift.c, built into ``folder`` (skips the test without a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler (cc) to build the wall-clock shifting library")
    lib = folder / "wallclock_shift.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(Path(__file__).with_name("wallclock_shift.c")),
                    "-ldl"], check=True, capture_output=True, timeout=60)
    return lib


def start_daemon_with_clock(net: Machines, machine: str, shift_s: int) -> subprocess.Popen:
    """``dora-zenoh daemon`` on ``machine``, its wall clock (and its nodes') shifted by ``shift_s``."""
    log = open(net.tmp / f"{machine}-daemon-{len(net.procs)}.log", "w")  # noqa: SIM115 (closed in cleanup)
    env = {**net.env, "LD_PRELOAD": str(wallclock_shift_library(net.tmp)), "WALLCLOCK_SHIFT_S": str(shift_s)}
    p = subprocess.Popen(["ip", "netns", "exec", net.ns[machine], sys.executable, "-m", "dora_zenoh", "daemon", "--machine-id", machine,
                          "--coordinator", net.coordinator, "--listen", f"tcp/{net.addr[machine]}:7448",
                          "--insecure-tcp"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=net.tmp)
    p.stderr = log  # closed in cleanup
    net.procs.append(p)
    wait_for(lambda: machine in net.daemons(), 30, f"daemon {machine} to join")
    return p


def write_flow(folder: Path) -> Path:
    """ping (a) -> echo (b) -> sink (a); each records the sender's timestamp minus its own clock."""
    skew_line = ('skew = event["metadata"]["timestamp"].timestamp() - time.time()\n'
                 '                with open(os.path.join(os.environ["OUTDIR"], f"{NAME}-skew.txt"), "a") as f:\n'
                 '                    f.write(f"{skew:.1f}\\n")')
    for name, body in (("ping", 'node.send_output("out", b"x")'),
                       ("echo", skew_line + '\n                node.send_output("out", b"y")'),
                       ("sink", skew_line)):
        (folder / f"{name}.py").write_text(textwrap.dedent(f"""
            import os, time
            from dora import Node
            NAME = {name!r}
            node = Node()
            for event in node:
                if event["type"] != "INPUT":
                    continue
                {body}
        """))
    yaml = folder / "dataflow.yml"
    out = {"OUTDIR": str(folder)}  # b may run from a copy of the folder (docs/machines.md): write here
    yaml.write_text(textwrap.dedent(f"""
        nodes:
          - id: ping
            path: ping.py
            deploy: {{machine: a}}
            inputs: {{tick: dora/timer/millis/200}}
            outputs: [out]
          - id: echo
            path: echo.py
            deploy: {{machine: b}}
            inputs: {{in: ping/out}}
            outputs: [out]
            env: {json.dumps(out)}
          - id: sink
            path: sink.py
            deploy: {{machine: a}}
            inputs: {{in: echo/out}}
            env: {json.dumps(out)}
    """))
    (folder / ".dora-zenoh-ignore").write_text("*.log\n*-skew.txt\n/state/\n")
    return yaml


def skews(folder: Path, name: str) -> list[float]:
    path = folder / f"{name}-skew.txt"
    return [float(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("sign", [1, -1], ids=["b-ahead", "b-behind"])
def test_machines_whose_clocks_differ_by_an_hour(machines: Machines, sign: int) -> None:  # noqa: F811
    net = machines
    net.start_coordinator()
    net.start_daemon("a")
    start_daemon_with_clock(net, "b", sign * SKEW_S)
    out = net.cli("start", str(write_flow(net.tmp)), "--name", f"clk{sign + 1}", "--detach")
    assert out.returncode == 0, out.stderr
    name = f"clk{sign + 1}"
    wait_for(lambda: len(skews(net.tmp, "sink")) >= 3, 60, "messages from b at a's sink")
    # The coordinator hears b's reports on its own clock: b stays connected and its node running.
    end = time.monotonic() + WATCH_S
    while time.monotonic() < end:
        nodes = net.nodes(name)
        assert nodes.get("echo", {}).get("status") in ("running", None), nodes  # None: a slow `list`
        time.sleep(1.0)
    log = (net.tmp / "a-coordinator-0.log").read_text()
    assert "daemon of machine 'b' lost" not in log, log[-2000:]
    row = json.loads(net.cli("list", name, "--json").stdout)
    assert row["status"] == "running" and 0 <= row["uptime"] < 600, row  # the coordinator's clock
    assert {n["id"]: n["machine"] for n in row["nodes"]} == {"ping": "a", "echo": "b", "sink": "a"}
    # Whose clock a timestamp is on: the sender's. b's messages are an hour off at a, and a's at b.
    at_a, at_b = skews(net.tmp, "sink"), skews(net.tmp, "echo")
    assert at_a and all(abs(s - sign * SKEW_S) < 60 for s in at_a), at_a[:5]
    assert at_b and all(abs(s + sign * SKEW_S) < 60 for s in at_b), at_b[:5]
    count = len(at_a)
    wait_for(lambda: len(skews(net.tmp, "sink")) > count + 3, 30, "data to keep flowing")
    out = net.cli("stop", name)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: all(s["status"] not in ("running", "stopping") for s in net.nodes(name).values()),
             60, "every node to stop")
