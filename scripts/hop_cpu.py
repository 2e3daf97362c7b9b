#!/usr/bin/env python3
"""CPU time per relayed message in a short dora-zenoh chain, per node process.

A source on a PERIOD ms timer sends an int64 array; RELAYS nodes forward ``event["value"]``
(``for event in node: node.send_output(...)``, the scale case's relay); a sink counts. After a
warm-up, the CPU time (user + system, all threads, from /proc) of every node process is read
twice, ``--seconds`` apart, and divided by the messages the source sent in between. Prints
one line per role (source, relay: the median of the relays, sink) in µs per message, and the
load average: CPU time, not wall time, so a loaded machine inflates it (cold caches) but does
not make it meaningless. ``--env K=V`` sets a variable for every node (A/B of a setting);
``--floor`` also runs ``scripts/rate_floor.py`` (the same hop in plain zenoh-python).

    python scripts/hop_cpu.py --relays 4 --seconds 10
    python scripts/hop_cpu.py --env DORA_ZENOH_SPIN_US=0
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

HERE = Path(__file__).resolve().parent
NODES = HERE / "bench_nodes"


def _dataflow(relays: int, period_ms: int, stamps: Path, pause: Path, stop: Path, modes: list[str]) -> dict:
    common = {"STAMP_DIR": str(stamps)}
    flow = [{"id": "source", "path": str(NODES / "scale_source.py"),
             "inputs": {"tick": f"dora/timer/millis/{period_ms}"}, "outputs": ["out"],
             "env": {**common, "NODE_ID": "source", "PAUSE_FILE": str(pause), "STOP_FILE": str(stop)}}]
    upstream = "source/out"
    for i in range(1, relays + 2):
        last = i == relays + 1
        node_id = "sink" if last else f"n{i}"
        mode, _, variant = modes[(i - 1) % len(modes)].partition(":")
        entry = {"id": node_id, "path": str(NODES / ("scale_relay.py" if last else "hop_relay.py")),
                 "inputs": {"in": {"source": upstream, "queue_size": 1000}},
                 "env": {**common, "NODE_ID": node_id, "FORWARD": "0" if last else "1", "MODE": mode,
                         "VARIANT": variant}}
        if "=" in variant:  # a setting for this relay only: dora:DORA_ZENOH_SPIN_US=0
            key, _, value = variant.partition("=")
            entry["env"][key] = value
        if not last:
            entry["outputs"] = ["out"]
        flow.append(entry)
        upstream = f"{node_id}/out"
    return {"nodes": flow}


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` by thread name (summed per name), from
    /proc/PID/task/*/schedstat (ns resolution, where cpu_times counts 10 ms ticks)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ns = int((task / "schedstat").read_text().split()[0])
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        name = re.sub(r"[-_]?\d+$", "", name)
        out[name] = out.get(name, 0.0) + ns / 1e9
        switches = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
        if switches:
            out[name + " wakes"] = out.get(name + " wakes", 0.0) + int(switches[1])
    return out


def _sum_cpu(threads: dict[str, float]) -> float:
    return sum(v for k, v in threads.items() if not k.endswith(" wakes"))


def _cpu(proc: psutil.Process) -> float:
    return _sum_cpu(_threads(proc.pid))


def _roles(root: psutil.Process) -> dict[str, psutil.Process]:
    out = {}
    for child in root.children(recursive=True):
        try:
            node_id = child.environ().get("NODE_ID")
        except psutil.Error:
            continue
        if node_id:
            out[node_id] = child
    return out


def measure(opts: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="dz-hop-") as tmp:
        work = Path(tmp)
        stamps, pause, stop = work / "stamps", work / "pause", work / "stop"
        stamps.mkdir()
        path = work / "dataflow.yml"
        path.write_text(yaml.safe_dump(_dataflow(opts.relays, opts.period_ms, stamps, pause, stop, opts.modes.split(",")), sort_keys=False))
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.update(dict(kv.split("=", 1) for kv in opts.env))
        with socket_port() as port:
            endpoint = f"tcp/127.0.0.1:{port}"
        cmd = [str(Path(sys.executable).parent / "dora-zenoh"), "run", str(path), "--endpoint", endpoint,
               "--stop-after", f"{opts.seconds + 60:.0f}s", "--quiet", "--log-dir", str(work / "logs")]
        runner = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (stamps / "sink.first").exists():
                if time.monotonic() > deadline or runner.poll() is not None:
                    raise SystemExit("the chain never delivered (runner exited or 60 s passed)")
                time.sleep(0.1)
            time.sleep(opts.warmup)
            root = psutil.Process(runner.pid)
            procs = _roles(root)
            before = {k: _threads(p.pid) for k, p in procs.items()}
            t0 = time.monotonic()
            time.sleep(opts.seconds)
            after = {k: _threads(p.pid) for k, p in procs.items()}
            wall = time.monotonic() - t0
            runner_cpu = None
            messages = wall * 1000 / opts.period_ms
            per = {k: (_sum_cpu(after[k]) - _sum_cpu(before[k])) / messages * 1e6 for k in procs}
            modes = opts.modes.split(",")
            threads: dict[str, dict[str, list[float]]] = {}  # relays' threads by mode, µs (or wakes) per message
            for k in procs:
                if k.startswith("n"):
                    mode = modes[(int(k[1:]) - 1) % len(modes)]
                    for name, t in after[k].items():
                        if name in ("app", "app wakes", "jemalloc_bg_thd", "jemalloc_bg_thd wakes"):
                            continue
                        scale = 1 if name.endswith(" wakes") else 1e6
                        threads.setdefault(mode, {}).setdefault(name, []).append(
                            (t - before[k].get(name, 0.0)) / messages * scale)
            pause.touch()
            time.sleep(1.0)
            before = {k: _cpu(p) for k, p in procs.items()}
            t0 = time.monotonic()
            time.sleep(opts.idle_seconds)
            idle = {k: (_cpu(p) - before[k]) / (time.monotonic() - t0) * 100 for k, p in procs.items()}
            splits = {}
            for p in stamps.glob("*.split.json"):
                got = json.loads(p.read_text())
                count = got.pop("count")
                splits[p.name.split(".")[0]] = {k: round(v / count / 1e3, 1) for k, v in got.items()}
            stop.touch()
            runner.send_signal(2)
            runner.wait(60)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
        by_mode: dict[str, list[float]] = {}
        for k, v in per.items():
            if k.startswith("n"):
                by_mode.setdefault(modes[(int(k[1:]) - 1) % len(modes)], []).append(v)
        relays = [v for k, v in per.items() if k.startswith("n")]
        return {"source_us": round(per.get("source", 0), 1), "relay_us": round(statistics.median(relays), 1),
                "relays_us": {k: round(v, 1) for k, v in per.items() if k.startswith("n")},
                "by_mode_us": {m: round(statistics.median(v), 1) for m, v in by_mode.items()}, "splits": splits,
                "relay_threads": {m: {n: round(statistics.median(v), 2) for n, v in per_mode.items()}
                                  for m, per_mode in threads.items()}, "sink_us": round(per.get("sink", 0), 1),
                "idle_pct_per_node": round(statistics.mean(idle.values()), 3), "runner_cpu": runner_cpu,
                "load": round(os.getloadavg()[0], 1)}


class socket_port:
    def __enter__(self) -> int:
        import socket
        self._s = socket.socket()
        self._s.bind(("127.0.0.1", 0))
        return self._s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relays", type=int, default=4)
    ap.add_argument("--period-ms", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0, help="measuring window with messages flowing")
    ap.add_argument("--idle-seconds", type=float, default=3.0, help="measuring window with the source paused")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--env", action="append", default=[], help="K=V for every node (repeatable)")
    ap.add_argument("--modes", default="dora", help="relay kinds in turn along the chain: dora, plain")
    ap.add_argument("--floor", action="store_true", help="also run scripts/rate_floor.py")
    opts = ap.parse_args()
    print(json.dumps({"env": opts.env, **measure(opts)}), flush=True)
    if opts.floor:
        print(json.dumps({"floor": "plain zenoh-python (scripts/rate_floor.py)", **floor(opts)}), flush=True)


def floor(opts: argparse.Namespace) -> dict:
    """The same window over scripts/rate_floor.py's relay and subscriber processes."""
    count = int((opts.warmup + opts.seconds + 8) * 1000 / opts.period_ms)
    proc = subprocess.Popen([sys.executable, str(HERE / "rate_floor.py"), "--count", str(count),
                             "--period-ms", str(opts.period_ms)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.5 + opts.warmup)
        procs = {}
        for child in psutil.Process(proc.pid).children(recursive=True):
            cmd = child.cmdline()
            if "--role" in cmd:
                procs[cmd[cmd.index("--role") + 1]] = child
        before = {k: _threads(p.pid) for k, p in procs.items()}
        t0 = time.monotonic()
        time.sleep(opts.seconds)
        after = {k: _threads(p.pid) for k, p in procs.items()}
        messages = (time.monotonic() - t0) * 1000 / opts.period_ms
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
    out = {f"{k}_us": round((_sum_cpu(after[k]) - _sum_cpu(before[k])) / messages * 1e6, 1) for k in procs}
    out["relay_threads"] = {n: round((t - before["relay"].get(n, 0.0)) / messages * (1 if n.endswith(" wakes") else 1e6), 2)
                            for n, t in after["relay"].items()}
    out["load"] = round(os.getloadavg()[0], 1)
    return out


if __name__ == "__main__":
    main()
