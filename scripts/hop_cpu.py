#!/usr/bin/env python3
"""CPU time per relayed message, dora-zenoh next to plain zenoh-python, in one chain.

``dora-zenoh run`` starts a source (an int64 array every PERIOD ms: the scale case's source),
RELAYS relays and a sink (the scale case's reader, which reads the value of its first message
only). The relays take the kinds of ``--modes`` in turn along the chain:

- ``dora``: ``for event in node: node.send_output("out", event["value"])``;
- ``plain``: the same hop in plain zenoh-python (``recv()``, ``put()`` of the payload,
  encoding and attachment) on the session a dora-zenoh node opens (same links, same
  one-thread Zenoh runtime), so both kinds run side by side under the same load;
- ``KIND:VAR=VALUE``: that kind with a setting of its own (an A/B of one setting);
- ``KIND@POLICY``: that kind with its input on ``queue_policy: POLICY`` (``block`` or
  ``drop_oldest``, the default), also with a setting (``dora@block:VAR=VALUE``).

After a warm-up, each node process's CPU time (all threads, ns resolution, from
/proc/PID/task/*/schedstat; voluntary context switches from .../status) is read twice,
``--seconds`` apart, and divided by the messages the source sent in between. Prints one JSON
line: µs per message per kind (median over its relays), per node, per thread of each kind
(``python``: the node's thread, ``rx``: Zenoh's, ``... wakes``: how often it slept and was
woken per message), the source's and sink's, each relay's own split (thread CPU of receiving
vs sending), the idle CPU per node with the source paused, and the load average. CPU time,
not wall time: a loaded machine inflates it (cold caches), so compare kinds within one run.

    python scripts/hop_cpu.py --relays 8 --modes dora,plain --seconds 10
    python scripts/hop_cpu.py --relays 9 --modes plain,dora,dora:DORA_ZENOH_SEND_YIELD_US=0
    python scripts/hop_cpu.py --relays 8 --modes dora,dora@block
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
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
SKIP_THREADS = ("app", "jemalloc_bg_thd")  # idle helper threads


def _dataflow(opts: argparse.Namespace, stamps: Path, pause: Path, stop: Path) -> dict:
    modes = opts.modes.split(",")
    common = {"STAMP_DIR": str(stamps)}
    flow = [{"id": "source", "path": str(NODES / "scale_source.py"),
             "inputs": {"tick": f"dora/timer/millis/{opts.period_ms}"}, "outputs": ["out"],
             "env": {**common, "NODE_ID": "source", "PAUSE_FILE": str(pause), "STOP_FILE": str(stop)}}]
    upstream = "source/out"
    for i in range(1, opts.relays + 1):
        kind, _, setting = modes[(i - 1) % len(modes)].partition(":")
        mode, _, policy = kind.partition("@")
        env = {**common, "NODE_ID": f"n{i}", "MODE": mode}
        if setting:
            key, _, value = setting.partition("=")
            env[key] = value
        edge = {"source": upstream, "queue_size": 1000, **({"queue_policy": policy} if policy else {})}
        flow.append({"id": f"n{i}", "path": str(NODES / "hop_relay.py"),
                     "inputs": {"in": edge}, "outputs": ["out"], "env": env})
        upstream = f"n{i}/out"
    flow.append({"id": "sink", "path": str(NODES / "scale_relay.py"),
                 "inputs": {"in": {"source": upstream, "queue_size": 1000}},
                 "env": {**common, "NODE_ID": "sink", "FORWARD": "0"}})
    return {"nodes": flow}


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (summed over threads of one name) and, under "NAME wakes",
    voluntary context switches."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ns = int((task / "schedstat").read_text().split()[0])
            name = re.sub(r"[-_]?\d+$", "", (task / "comm").read_text().strip())
            status = (task / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        if name.startswith("python"):
            name = "python"
        if name in SKIP_THREADS:
            continue
        out[name] = out.get(name, 0.0) + ns / 1e9
        switches = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
        if switches:
            out[name + " wakes"] = out.get(name + " wakes", 0.0) + int(switches[1])
    return out


def _cpu(threads: dict[str, float]) -> float:
    return sum(v for k, v in threads.items() if not k.endswith(" wakes"))


def _nodes(runner: psutil.Process, stamps: Path) -> dict[str, psutil.Process]:
    """The node processes by id: the relays' from their pid files, the others from their
    environment (not known for a node forked from the fork server: /proc shows the zygote's)."""
    out = {}
    for pid_file in stamps.glob("*.pid"):
        try:
            out[pid_file.stem] = psutil.Process(int(pid_file.read_text()))
        except (psutil.Error, ValueError):
            continue
    for child in runner.children(recursive=True):
        try:
            node_id = child.environ().get("NODE_ID")
        except psutil.Error:
            continue
        if node_id and node_id not in out:
            out[node_id] = child
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(opts: argparse.Namespace) -> dict:
    modes = opts.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="dz-hop-") as tmp:
        work = Path(tmp)
        stamps, pause, stop = work / "stamps", work / "pause", work / "stop"
        stamps.mkdir()
        path = work / "dataflow.yml"
        path.write_text(yaml.safe_dump(_dataflow(opts, stamps, pause, stop), sort_keys=False))
        bindir = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
        cmd = [str(bindir / "dora-zenoh"), "run", str(path), "--endpoint", f"tcp/127.0.0.1:{_free_port()}",
               "--stop-after", f"{opts.warmup + opts.seconds + opts.idle_seconds + 90:.0f}s", "--quiet",
               "--log-dir", str(work / "logs")]
        runner = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while not (stamps / "sink.first").exists():
                if time.monotonic() > deadline or runner.poll() is not None:
                    raise SystemExit("the chain never delivered (the runner exited, or 90 s passed)")
                time.sleep(0.1)
            time.sleep(opts.warmup)
            procs = _nodes(psutil.Process(runner.pid), stamps)
            before = {k: _threads(p.pid) for k, p in procs.items()}
            t0 = time.monotonic()
            time.sleep(opts.seconds)
            after = {k: _threads(p.pid) for k, p in procs.items()}
            messages = (time.monotonic() - t0) * 1000 / opts.period_ms
            splits = {}
            for p in stamps.glob("*.split.json"):
                got = json.loads(p.read_text())
                splits[p.name.split(".")[0]] = {"recv_us": round(got["recv_ns"] / got["count"] / 1e3, 1),
                                                "send_us": round(got["send_ns"] / got["count"] / 1e3, 1)}
            pause.touch()
            time.sleep(1.0)
            idle_before, t1 = {k: _cpu(_threads(p.pid)) for k, p in procs.items()}, time.monotonic()
            time.sleep(opts.idle_seconds)
            idle = {k: (_cpu(_threads(p.pid)) - idle_before[k]) / (time.monotonic() - t1) * 100
                    for k, p in procs.items()}
        finally:
            stop.touch()
            runner.send_signal(signal.SIGINT)
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
    per = {k: (_cpu(after[k]) - _cpu(before[k])) / messages * 1e6 for k in procs}
    by_mode: dict[str, list[float]] = {}
    threads: dict[str, dict[str, list[float]]] = {}
    for k in procs:
        if not k.startswith("n"):
            continue
        mode = modes[(int(k[1:]) - 1) % len(modes)]
        by_mode.setdefault(mode, []).append(per[k])
        for name, t in after[k].items():
            scale = 1 if name.endswith(" wakes") else 1e6
            threads.setdefault(mode, {}).setdefault(name, []).append((t - before[k].get(name, 0.0)) / messages * scale)
    return {"relay_us": {m: round(statistics.median(v), 1) for m, v in by_mode.items()},
            "relay_threads": {m: {n: round(statistics.median(v), 2) for n, v in t.items()} for m, t in threads.items()},
            "source_us": round(per["source"], 1) if "source" in per else None,
            "sink_us": round(per["sink"], 1) if "sink" in per else None,
            "nodes_us": {k: round(v, 1) for k, v in per.items()}, "relay_splits_us": splits,
            "idle_pct_per_node": round(statistics.mean(idle.values()), 3) if idle else None,
            "messages": round(messages),
            "load": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relays", type=int, default=8)
    ap.add_argument("--modes", default="dora,plain", help="relay kinds in turn along the chain (see above)")
    ap.add_argument("--period-ms", type=int, default=20, help="the source's timer period")
    ap.add_argument("--seconds", type=float, default=10.0, help="measuring window with messages flowing")
    ap.add_argument("--idle-seconds", type=float, default=3.0, help="measuring window with the source paused")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds after the sink's first message")
    opts = ap.parse_args()
    print(json.dumps(measure(opts)), flush=True)


if __name__ == "__main__":
    main()
