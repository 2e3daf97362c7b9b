"""bench.py's `--daemon` runtime: the same dataflow, every node placed on a daemon of this machine.

What a node's latency costs when a daemon supervises it instead of `run` (issue: "the local
latency unchanged by having a daemon"). Starts a coordinator and one daemon on free loopback
ports, gives every node `deploy: {machine: bench}`, `start --attach`es it (bounded by
--stop-after, then `stop`), and takes both down again, also on failure or a signal.

    python scripts/bench_daemon.py --dz 'dora-zenoh' --stop-after 60 --workdir DIR dataflow.yml
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from dora_zenoh.supervision.client import coordinator_running
from dora_zenoh.wire.zconfig import free_tcp_endpoint

MACHINE = "bench"


def wait_for_daemon(endpoint: str, timeout: float = 60.0) -> bool:
    """Until the coordinator at ``endpoint`` lists the daemon (its `info`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = coordinator_running(endpoint)
        if info is not None and MACHINE in info.get("daemons", []):
            return True
        time.sleep(0.3)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dz", default="dora-zenoh", help="the dora-zenoh command")
    ap.add_argument("--stop-after", type=float, required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("file", type=Path)
    opts = ap.parse_args()
    dz = opts.dz.split()
    endpoint = free_tcp_endpoint()
    env = {**os.environ, "DORA_ZENOH_ENDPOINT": endpoint}
    desc = yaml.safe_load(opts.file.read_text())
    for node in desc["nodes"]:
        node["deploy"] = {"machine": MACHINE}
    opts.file.write_text(yaml.safe_dump(desc, sort_keys=False))
    procs: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with open(opts.workdir / "coordinator.log", "w") as log:
            procs.append(subprocess.Popen([*dz, "coordinator", "--endpoint", endpoint], stdout=log,
                                          stderr=subprocess.STDOUT, env=env))
        with open(opts.workdir / "daemon.log", "w") as log:
            procs.append(subprocess.Popen([*dz, "daemon", "--machine-id", MACHINE, "--coordinator", endpoint,
                                           "--listen", free_tcp_endpoint()], stdout=log,
                                          stderr=subprocess.STDOUT, env=env))
        if not wait_for_daemon(endpoint):
            print("the daemon did not join the coordinator", file=sys.stderr)
            return 1
        start = subprocess.Popen([*dz, "start", str(opts.file), "--name", "bench", "--attach", "--grace", "5s",
                                  "--log-dir", str(opts.workdir / "logs")], env=env)
        try:
            return start.wait(opts.stop_after)
        except subprocess.TimeoutExpired:
            subprocess.run([*dz, "stop", "bench"], env=env, timeout=60, capture_output=True)
            return start.wait(60)
    finally:
        for p in reversed(procs):  # the daemon first: it stops its nodes
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
