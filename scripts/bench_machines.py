"""Cross-machine latency: dora-zenoh (coordinator + a daemon per machine) vs plain zenoh-python.

Two "machines" are Linux network namespaces joined by a veth pair (needs root); ``--delay-ms``
adds a netem delay on each side. Ping runs on machine a, pong on machine b; both runtimes
use the same link, plain TCP, and no shared memory (the namespaces share this host's
/dev/shm, which two real machines would not). One-way = round trip / 2.

  sudo .venv/bin/python scripts/bench_machines.py --sizes 8,65536,4194304 --rounds 200
  sudo .venv/bin/python scripts/bench_machines.py --delay-ms 1
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODES = ROOT / "scripts" / "bench_nodes"
FLOOR = ROOT / "scripts" / "zenoh_floor.py"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


class Net:
    def __init__(self, delay_ms: float) -> None:
        tag = os.getpid() % 100000
        self.ns = {"a": f"dzba{tag}", "b": f"dzbb{tag}"}
        self.dev = {"a": f"dba{tag}", "b": f"dbb{tag}"}
        n = 20 + os.getpid() % 200
        self.addr = {"a": f"10.231.{n}.1", "b": f"10.231.{n}.2"}
        self.delay_ms = delay_ms

    def __enter__(self) -> Net:
        try:
            self._make()
        except subprocess.CalledProcessError as exc:
            self.__exit__()
            raise SystemExit(f"cannot make the network ({' '.join(exc.cmd)}): {exc.stderr.decode().strip()}"
                             + (" (netem is not available in this kernel: try without --delay-ms)"
                                if "qdisc" in exc.cmd else "")) from None
        return self

    def _make(self) -> None:
        for m in "ab":
            ip("netns", "add", self.ns[m])
        ip("link", "add", self.dev["a"], "type", "veth", "peer", "name", self.dev["b"])
        for m in "ab":
            ip("link", "set", self.dev[m], "netns", self.ns[m])
            ip("-n", self.ns[m], "addr", "add", f"{self.addr[m]}/24", "dev", self.dev[m])
            ip("-n", self.ns[m], "link", "set", self.dev[m], "up")
            ip("-n", self.ns[m], "link", "set", "lo", "up")
            if self.delay_ms:
                subprocess.run(["ip", "netns", "exec", self.ns[m], "tc", "qdisc", "add", "dev", self.dev[m], "root",
                                "netem", "delay", f"{self.delay_ms}ms"], check=True, capture_output=True)

    def __exit__(self, *exc: object) -> None:
        for m in "ab":
            out = subprocess.run(["ip", "netns", "pids", self.ns[m]], capture_output=True, text=True).stdout
            for pid in out.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", self.ns[m]], capture_output=True)

    def popen(self, m: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.ns[m], *argv], env=env, cwd=cwd,
                                stdout=open(log, "a"), stderr=subprocess.STDOUT)  # noqa: SIM115

    def run(self, m: str, argv: list[str], env: dict[str, str], cwd: Path, timeout: float
            ) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns[m], *argv], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=timeout)


def wait_for(cond: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def plain_zenoh(net: Net, opts: argparse.Namespace, work: Path) -> dict:
    env = dict(os.environ)
    ready, result, log = work / "ready", work / "floor.json", work / "floor.log"
    pong = net.popen("b", [sys.executable, str(FLOOR), "pong", "--host", net.addr["b"], "--port", "7555", "--no-shm",
                           "--ready-file", str(ready), "--max-seconds", "600"], env, log, work)
    try:
        if not wait_for(ready.exists, 30):
            return {"error": "pong did not start"}
        net.run("a", [sys.executable, str(FLOOR), "ping", "--host", net.addr["b"], "--port", "7555", "--no-shm",
                      "--sizes", opts.sizes, "--rounds", str(opts.rounds), "--warmup", str(opts.warmup),
                      "--result", str(result)], env, work, 600)
    finally:
        pong.terminate()
        pong.wait(10)
    return json.loads(result.read_text()) if result.exists() else {"error": log.read_text()[-1500:]}


def dora_zenoh(net: Net, opts: argparse.Namespace, work: Path) -> dict:
    zconf = work / "zenoh.json5"
    zconf.write_text(json.dumps({"scouting": {"multicast": {"enabled": False}},
                                 "transport": {"shared_memory": {"enabled": False}}}))
    coordinator = f"tcp/{net.addr['a']}:{20000 + os.getpid() % 20000}"  # also names the control socket
    env = {**os.environ, "DORA_ZENOH_ZENOH_CONFIG": str(zconf), "DORA_ZENOH_ENDPOINT": coordinator,
           "DORA_ZENOH_INSECURE_NETWORK": "1"}
    dz = [sys.executable, "-m", "dora_zenoh"]
    log = work / "dz.log"
    net.popen("a", [*dz, "coordinator", "--endpoint", coordinator], env, log, work)
    if not wait_for(lambda: net.run("a", [*dz, "list"], env, work, 20).returncode == 0, 30):
        return {"error": "coordinator did not start: " + log.read_text()[-1500:]}
    for m in "ab":
        net.popen(m, [*dz, "daemon", "--machine-id", m, "--coordinator", coordinator, "--listen",
                      f"tcp/{net.addr[m]}:7448", "--insecure-tcp"], env, log, work)
    time.sleep(2)
    result = work / "dz.json"
    (work / "dataflow.yml").write_text(textwrap.dedent(f"""
        nodes:
          - id: ping
            path: {NODES / 'ping.py'}
            deploy: {{machine: a}}
            inputs: {{pong: pong/pong}}
            outputs: [ping, done]
            env: {{SIZES: "{opts.sizes}", ROUNDS: "{opts.rounds}", WARMUP: "{opts.warmup}", RESULT_FILE: "{result}"}}
          - id: pong
            path: {NODES / 'pong.py'}
            deploy: {{machine: b}}
            inputs: {{ping: ping/ping, done: ping/done}}
            outputs: [pong]
    """))
    out = net.run("a", [*dz, "start", str(work / "dataflow.yml"), "--name", "xbench"], env, work, 900)
    if result.exists():
        return json.loads(result.read_text())
    return {"error": (out.stderr + log.read_text())[-1500:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="8,65536,4194304")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="netem delay on each side of the link")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    report = {}
    for name, fn in (("zenoh-python", plain_zenoh), ("dora-zenoh", dora_zenoh)):
        with tempfile.TemporaryDirectory(prefix="dz-xbench-") as tmp, Net(opts.delay_ms) as net:
            report[name] = fn(net, opts, Path(tmp))
    print(f"one-way p50 / p90 in µs across a veth (netem delay {opts.delay_ms:g} ms each way), no SHM")
    print(f"{'size':>9}  {'zenoh-python':>20}  {'dora-zenoh':>20}  ratio(p50)")
    for size in opts.sizes.split(","):
        row = []
        for name in ("zenoh-python", "dora-zenoh"):
            r = report[name].get(size)
            row.append(f"{r['one_way_p50_us']:.0f} / {r['one_way_p90_us']:.0f}" if r else "error")
        z, d = report["zenoh-python"].get(size), report["dora-zenoh"].get(size)
        ratio = f"{d['one_way_p50_us'] / z['one_way_p50_us']:.2f}x" if z and d else "-"
        print(f"{size:>9}  {row[0]:>20}  {row[1]:>20}  {ratio}")
    for name, r in report.items():
        if "error" in r:
            print(f"{name}: {r['error']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
