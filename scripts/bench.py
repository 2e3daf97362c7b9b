#!/usr/bin/env python3
"""dora-zenoh's benchmark: latency, throughput, startup and idle CPU.

Cases (select with --cases):
  latency     two-node ping-pong, one-way p50/p90 per message size (half the round trip), and
              the ping process's CPU time per round trip
  throughput  windowed flood: the sender waits for an ack after every window; a lost
              message is reported as LOST with its count, never hidden
  busy        a node sends on every tick, then computes (busy loop) before it waits again:
              the receiver's one-way delay p50/p90/p99 (the message must get out while the
              sender's thread keeps its CPU)
  pipeline    a sensor pipeline: a source on a 1 ms timer, 3 stages that each forward what
              they get, a sink; end-to-end delay p50/p90/p99 and every node's CPU
  startup     from spawning the runner to every node of a 10-node dataflow having its first input
  idle        CPU of node processes waiting for an input that never comes / a slow timer
  scale       a chain (source -> N-2 forwarders -> sink) and a fan-out (source -> N-1 readers) of
              --scale-nodes nodes, source on a --scale-period-ms timer: time to the last node's
              first message, whether every edge delivered from the first message and lost none
              (and whether the nodes reported every loss: their logs are read),
              CPU at that rate and idle, PSS per node, TCP connections; a clean end (no ZError,
              no panic, runner exit 0)
  machines    (not in the default set: needs root) two machines as network namespaces, over a
              veth pair and over a link with 1 ms delay each way: one-way latency and
              throughput of dora-zenoh (coordinator, a daemon per machine) against plain
              zenoh-python on the same link (scripts/bench_machines.py, its table and JSON)
  record      first the MCAP writer alone (no Zenoh: what one core can write, per compression);
              then `run --record` of a paced sender (SIZE bytes at RATE msg/s) whose only reader is
              the recorder: the sender's real rate, what reached the file (count, recorder drops,
              messages lost before the recorder), the recorder's CPU (per stage, from the file's
              metadata) and buffer peak; then `replay` of the file: each message's send time minus
              its scheduled time (p50/p99/max)

The node scripts in scripts/bench_nodes/ use only the dora node API (`from dora import Node`,
events as dicts), so --compare runs the very same files under dora-rs 1.1.0 (installed on first
use into its own venv) and adds plain zenoh-python (scripts/zenoh_floor.py) as the latency floor,
once with Zenoh's default runtime and once with the one-thread runtime dora-zenoh gives its nodes.
Runtimes take turns within every repeat, and each figure is the median over --repeat, so a drift
in machine speed hits all runtimes alike.

examples:
  python scripts/bench.py --quick                       # smoke run, dora-zenoh only
  python scripts/bench.py --compare --png bench.png     # the full side-by-side
  python scripts/bench.py --cases latency --sizes 8,1048576 --rounds 1000
  python scripts/bench.py --compare --cases latency --cpus 0   # every process on one core
  python scripts/bench.py --compare --cases latency --cpu-latency-us 0  # idle CPUs poll (PM QoS)
  python scripts/bench.py --compare --cases latency --latency-cpus 0,1  # ping on CPU 0, pong on 1
  python scripts/bench.py --cases scale --scale-pin blocks   # a chain's neighbours on one CPU
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from dora_zenoh.descriptor.cpus import format_cpu_list, parse_cpu_list
from dora_zenoh.tuning.cpulatency import CpuLatencyError, CpuLatencyRequest, idle_settings
from dora_zenoh.wire import zconfig

HERE = Path(__file__).resolve().parent
NODES = HERE / "bench_nodes"
FLOOR = HERE / "zenoh_floor.py"
PIPE_FLOOR = HERE / "pipe_floor.py"
CASES = ("latency", "throughput", "busy", "pipeline", "startup", "idle", "record", "scale")
MACHINES = HERE / "bench_machines.py"
MACHINE_LINKS = {"veth": ["--link", "veth"], "delay 1 ms": ["--delay-ms", "1"]}  # the two links
OPT_IN = ("machines",)  # cases `--cases` must name (root, network namespaces)
DZ, RS, ZENOH = "dora-zenoh", "dora-rs", "zenoh"
DZ_CLOSED = "dora-zenoh closed"  # --closed: the same runs with `run --secure`
DZ_DAEMON = "dora-zenoh daemon"  # --daemon: the same runs, every node on a daemon (bench_daemon.py)
DZ_RUNTIMES = (DZ, DZ_CLOSED, DZ_DAEMON)
ZENOH_1T = "zenoh 1-thread"  # the same floor with the Zenoh runtime dora-zenoh gives its nodes
BUSY_WARMUP = 10  # busy case: messages the receiver does not count (start-up, cold caches)
BUSY_KEYS = ("p50_us", "p90_us", "p99_us", "max_us")  # busy case: the receiver's delay quantiles (µs)
IDLE_KEYS = ("waiter_cpu_pct", "ticker_cpu_pct", "nodes_cpu_pct", "runner_cpu_pct", "helpers_cpu_pct")
PIPELINE_WARMUP_S = 0.5  # pipeline case: how long the run warms up before messages count
# Columns of the busy and pipeline tables: (summary key, header, digits); dora-zenoh's ratios.
BUSY_COLUMNS = [(k, k.replace("_us", " µs"), 0) for k in BUSY_KEYS]
PIPELINE_COLUMNS = BUSY_COLUMNS + [("source_cpu_pct", "source CPU %", 1), ("stage_cpu_pct", "stage CPU %", 1),
                                   ("sink_cpu_pct", "sink CPU %", 1), ("cpu_us_per_msg", "all nodes, CPU µs/msg", 0),
                                   ("lost", "missing (median)", 0)]
PIPELINE_KEYS = tuple(k for k, _, _ in PIPELINE_COLUMNS)  # pipeline case: the figures summarized
RATIOS = {"p50_us": "p50", "p99_us": "p99", "cpu_us_per_msg": "CPU"}
BUSY_QUEUE = 1000  # busy, pipeline: receivers' queues; none of the messages may be dropped while they start
DORA_RS_PACKAGES = ["dora-rs-cli==1.1.0", "dora-rs==1.1.0", "pyarrow", "numpy"]
FULL = {"sizes": "8,1024,65536,1048576,4194304", "rounds": 300, "warmup": 30, "repeat": 3,
        "flood": "8:20000:10,8:20000:50,8:20000:100,65536:3000:10,1048576:500:10", "idle_seconds": 5.0,
        "busy_count": 200, "pipeline_count": 2000, "record_runs": "8:100000:2,1048576:1000:2,1024:1000:3",
        "writer_runs": "8:200000,1048576:500",
        "scale_seconds": 5.0, "scale_nodes": "100,200"}
QUICK = {"sizes": "8,65536", "rounds": 50, "warmup": 5, "repeat": 1,
         "flood": "8:2000:50,65536:200:10", "idle_seconds": 2.0,
         "busy_count": 20, "pipeline_count": 100, "record_runs": "8:20000:1,1048576:200:1,1024:1000:1",
         "writer_runs": "8:50000,1048576:100",
         "scale_seconds": 2.0, "scale_nodes": "20"}
SCALE_KEYS = ("first_s", "start_cpu_s", "busy_cpu_pct", "idle_cpu_pct", "pss_mib_per_node", "tcp_connections", "end_s", "lost",
              "reported_lost", "unreported_lost", "exits_that_gave_up")
SCALE_COLUMNS = [("first_s", "run to last node's 1st msg, s", 2),
                 ("start_cpu_s", "CPU s until then (tree)", 1), ("busy_cpu_pct", "CPU % (msgs flowing)", 0),
                 ("idle_cpu_pct", "CPU % idle", 1), ("pss_mib_per_node", "PSS MiB/node", 1),
                 ("tcp_connections", "TCP conns", 0), ("end_s", "stop to runner exit, s", 1),
                 ("lost", "msgs lost (all readers)", 0), ("reported_lost", "drops the nodes reported", 0),
                 ("unreported_lost", "lost, not reported", 0),
                 ("exits_that_gave_up", "exits that gave up on a reader", 0)]

# Every process this script starts, so that any exit path can end them (and their trees).
_LIVE: list[subprocess.Popen] = []


class Unavailable(Exception):
    """A runtime that cannot be used here; its cases are reported as unavailable, not crashed on."""


# ---------------------------------------------------------------- processes


def spawn(cmd: list[str], workdir: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a process in its own session (so a stray group member can be found later) and track it."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    _LIVE.append(proc)
    return proc


def end_tree(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop a process gently (SIGINT = Ctrl-C: runtimes send STOP), then its whole tree by force.

    Descendants are collected before the parent goes, since orphans leave its tree; the session's
    process group is the backstop for any that were missed.
    """
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    alive = [p for p in family if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(alive, timeout=3)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created; gone already in the normal case
    if proc in _LIVE:
        _LIVE.remove(proc)


def end_all() -> None:
    """End every process still tracked: the finally of main, also on Ctrl-C and SIGTERM."""
    for proc in list(_LIVE):
        end_tree(proc, grace=2.0)


def exit_on_signals() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit and SIGINT into KeyboardInterrupt (even when started in the
    background, where SIGINT is inherited as ignored), so finally blocks run and nothing is orphaned."""
    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    """A loopback TCP port nobody listens on now, so runs never join another run's network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, chars: int = 1500) -> str:
    """The end of a log, for error messages that say why a run failed."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def wait_for(predicate: Callable[[], bool], timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Poll until predicate() holds; give up at the timeout or when proc has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------- runtimes


@dataclass
class Runtime:
    """How to run a dataflow file with one runtime: the command line and its environment."""

    name: str
    command: Callable[[Path, float, Path], list[str]]
    env: dict[str, str] = field(default_factory=dict)


def default_dora_zenoh_cmd() -> str:
    """`dora-zenoh` next to this Python (the project's venv), else on PATH, else `python -m`."""
    beside = Path(sys.executable).parent / "dora-zenoh"
    if beside.exists():
        return str(beside)
    found = shutil.which("dora-zenoh")
    return found if found else f"{sys.executable} -m dora_zenoh"


def dora_zenoh_runtime(cmd: str, record: bool = False, closed: bool = False) -> Runtime:
    """dora-zenoh on a private hub port, quiet, logs in the run's work dir, bounded by --stop-after;
    ``record``: every run also records all its outputs (`run --record`), to see what that costs;
    ``closed``: a closed dataflow (`run --secure`: credentials and access control, docs/security.md)."""
    def command(path: Path, stop_after: float, workdir: Path) -> list[str]:
        return cmd.split() + ["run", str(path), "--endpoint", f"tcp/127.0.0.1:{free_port()}",
                              "--stop-after", f"{stop_after:.0f}s", "--grace", "5s", "--quiet",
                              "--log-dir", str(workdir / "logs")] + (
                                  ["--record", str(workdir / "run.mcap")] if record else []) + (
                                  ["--secure"] if closed else [])
    path_env = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return Runtime(DZ_CLOSED if closed else DZ, command, {"PATH": path_env})


def dora_zenoh_daemon_runtime(cmd: str) -> Runtime:
    """dora-zenoh with a coordinator and a daemon of this machine running every node
    (scripts/bench_daemon.py): what supervision by a daemon costs a node's messages."""
    def command(path: Path, stop_after: float, workdir: Path) -> list[str]:
        return [sys.executable, str(HERE / "bench_daemon.py"), "--dz", cmd, "--stop-after", f"{stop_after:.0f}",
                "--workdir", str(workdir), str(path)]
    path_env = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return Runtime(DZ_DAEMON, command, {"PATH": path_env})


def ensure_dora_rs(venv: Path) -> Path:
    """The dora 1.1.0 CLI, installed into its own venv on first use (never into the project's)."""
    dora = venv / "bin" / "dora"
    if not dora.exists():
        print(f"installing dora-rs 1.1.0 into {venv} (first use) ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *DORA_RS_PACKAGES],
                           check=True, timeout=1200)
        except (OSError, subprocess.SubprocessError) as exc:
            raise Unavailable(f"dora-rs could not be installed into {venv}: {exc}") from exc
    try:
        out = subprocess.run([str(dora), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"{dora} does not run: {exc}") from exc
    if out.returncode != 0:
        raise Unavailable(f"{dora} --version failed: {out.stderr.strip()[:300]}")
    return dora


def dora_rs_runtime(venv: Path) -> Runtime:
    """dora-rs `dora run`, with its venv first on PATH so `.py` nodes get its `dora` package."""
    dora = ensure_dora_rs(venv)

    def command(path: Path, stop_after: float, _workdir: Path) -> list[str]:
        return [str(dora), "run", str(path), "--stop-after", f"{stop_after:.0f}s", "--log-level", "error"]
    path_env = f"{dora.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return Runtime(RS, command, {"PATH": path_env, "RUST_LOG": "error", "VIRTUAL_ENV": str(venv)})


@dataclass
class Run:
    """One dataflow run in a scratch directory: the runner process and where its output went."""

    runtime: Runtime
    workdir: Path
    proc: subprocess.Popen
    log: Path
    started: float  # time.time() just before spawning the runner


@contextlib.contextmanager
def dataflow(runtime: Runtime, nodes: list[dict], stop_after: float) -> Iterator[Run]:
    """Write the YAML, spawn the runner, and always end its whole tree and delete the scratch dir."""
    with tempfile.TemporaryDirectory(prefix="dz-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "dataflow.yml"
        path.write_text(yaml.safe_dump({"nodes": nodes}, sort_keys=False))
        env = {**os.environ, **runtime.env}
        log = workdir / "runner.log"
        cmd = runtime.command(path, stop_after, workdir)
        started = time.time()
        proc = spawn(cmd, workdir, env, log)
        try:
            yield Run(runtime, workdir, proc, log, started)
        finally:
            end_tree(proc)


def finish(run: Run, timeout: float) -> str | None:
    """Wait for the runner to exit by itself; an error text if it timed out or failed."""
    try:
        code = run.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return f"{run.runtime.name} did not finish within {timeout:.0f} s; log tail:\n{tail(run.log)}"
    if code != 0:
        return f"{run.runtime.name} exited {code}; log tail:\n{tail(run.log)}"
    return None


def node(node_id: str, script: str, inputs: dict | None = None, outputs: list[str] | None = None,
         env: dict[str, Any] | None = None, args: str | None = None) -> dict:
    """One node entry in the YAML shape both runtimes accept (absolute path, string env values)."""
    entry: dict[str, Any] = {"id": node_id, "path": str(NODES / script)}
    if args:
        entry["args"] = args
    if inputs:
        entry["inputs"] = inputs
    if outputs:
        entry["outputs"] = outputs
    if env:
        entry["env"] = {k: str(v) for k, v in env.items()}
    return entry


# ---------------------------------------------------------------- cases


def latency_dataflow(opts: argparse.Namespace, result: Path, runtime: Runtime) -> list[dict]:
    """ping sends, pong echoes the received value unchanged; each on its --latency-cpus CPU, if given."""
    env = {"RESULT_FILE": result, "SIZES": opts.sizes, "ROUNDS": opts.rounds, "WARMUP": opts.warmup}
    ping_in: Any = "pong/pong"
    pong_in: Any = "ping/ping"
    if opts.latency_policy != "drop_oldest":  # block: docs/performance.md (a block input's path)
        ping_in = {"source": ping_in, "queue_policy": opts.latency_policy}
        pong_in = {"source": pong_in, "queue_policy": opts.latency_policy}
    nodes = [node("ping", "ping.py", {"pong": ping_in}, ["ping", "done"], env),
             node("pong", "pong.py", {"ping": pong_in, "done": "ping/done"}, ["pong"])]
    for entry, cpu in zip(nodes, opts.latency_cpus or [], strict=False):
        pin(entry, cpu, runtime)
    return nodes


def pin(entry: dict, cpu: int, runtime: Runtime) -> None:
    """Start this node on one CPU: dora-zenoh's own `cpu_affinity`; dora-rs has no such key, so
    its node runs under `taskset -c` (the same mask, set before the interpreter starts)."""
    if runtime.name in DZ_RUNTIMES:
        entry["cpu_affinity"] = [cpu]
        return
    taskset, *args = pinned_cmd([str(Path(runtime.env["VIRTUAL_ENV"]) / "bin" / "python"), entry["path"]], cpu)
    entry["path"], entry["args"] = taskset, shlex.join(args)


def pinned_cmd(cmd: list[str], cpu: int | None) -> list[str]:
    """``cmd`` under ``taskset -c cpu`` (unchanged for None): plain zenoh's processes for --latency-cpus."""
    return cmd if cpu is None else [shutil.which("taskset") or "taskset", "-c", str(cpu), *cmd]


def run_for_result(runtime: Runtime, opts: argparse.Namespace,
                   nodes: Callable[[Path], list[dict]]) -> tuple[dict | None, str | None]:
    """Run the dataflow ``nodes(result_file)`` to its end: the JSON one node wrote to that
    file (None if it wrote none), and the runner's error text, if any. Nodes that report their
    CPU write ``cpu-<id>.json`` next to it: those land in the result under ``cpu``."""
    with tempfile.TemporaryDirectory(prefix="dz-bench-res-") as tmp:
        result = Path(tmp) / "result.json"
        with dataflow(runtime, nodes(result), opts.timeout) as run:
            error = finish(run, opts.timeout + 30)
        report = json.loads(result.read_text()) if result.exists() else None
        cpu = {p.stem.removeprefix("cpu-"): json.loads(p.read_text()) for p in Path(tmp).glob("cpu-*.json")}
        if report is not None and cpu:
            report["cpu"] = cpu
        return report, error


def run_latency(runtime: Runtime, opts: argparse.Namespace) -> dict:
    """Per size: one-way p50/p90 in microseconds from one ping-pong run, or an error."""
    report, error = run_for_result(runtime, opts, lambda result: latency_dataflow(opts, result, runtime))
    return report if report is not None else {"error": error or "no result written"}


def run_zenoh_floor(opts: argparse.Namespace, runtime: str | None = None) -> dict:
    """The same ping-pong in plain zenoh-python: two processes, peer mode, loopback.

    ``runtime``: a ``ZENOH_RUNTIME`` for both processes (else Zenoh's default, or yours).
    """
    with tempfile.TemporaryDirectory(prefix="dz-bench-zenoh-") as tmp:
        workdir = Path(tmp)
        port, ready, result, log = free_port(), workdir / "ready", workdir / "floor.json", workdir / "floor.log"
        env = dict(os.environ)
        if runtime:
            env[zconfig.RUNTIME_ENV] = runtime
        ping_cpu, pong_cpu = opts.latency_cpus or (None, None)
        pong = spawn(pinned_cmd([sys.executable, str(FLOOR), "pong", "--port", str(port), "--ready-file", str(ready),
                                 "--max-seconds", str(opts.timeout + 60)], pong_cpu), workdir, env, log)
        try:
            if not wait_for(ready.exists, 30, pong):
                return {"error": f"zenoh pong did not start; log tail:\n{tail(log)}"}
            ping = spawn(pinned_cmd([sys.executable, str(FLOOR), "ping", "--port", str(port), "--sizes", opts.sizes,
                                     "--rounds", str(opts.rounds), "--warmup", str(opts.warmup),
                                     "--result", str(result)], ping_cpu), workdir, env, log)
            try:
                ping.wait(opts.timeout)
            except subprocess.TimeoutExpired:
                return {"error": f"zenoh ping did not finish within {opts.timeout} s"}
            finally:
                end_tree(ping)
        finally:
            end_tree(pong)
        if result.exists():
            return json.loads(result.read_text())
        return {"error": f"zenoh ping wrote no result; log tail:\n{tail(log)}"}


def run_pipe_floor(opts: argparse.Namespace) -> dict:
    """The machine's wake-up floor (scripts/pipe_floor.py): one-way p50/p90 of a 1-byte pipe
    ping-pong between two processes, placed freely and on one CPU."""
    try:
        done = subprocess.run([sys.executable, str(PIPE_FLOOR)], capture_output=True, text=True,
                              timeout=opts.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"pipe_floor.py did not finish within {opts.timeout} s"}
    if done.returncode != 0:
        return {"error": f"pipe_floor.py exited with {done.returncode}: {done.stderr[-500:]}"}
    return json.loads(done.stdout)


def summarize_pipe_floor(runs: list[dict]) -> dict:
    """Per placement: median over repeats of the one-way p50 (µs)."""
    ok = [r for r in runs if "error" not in r]
    return {place: median_or_none([r[place]["one_way_p50_us"] for r in ok]) for place in ("free", "one-cpu")}


def pipe_floor_line(floor: dict) -> str:
    """One sentence under the latency table: how much of a two-process hop is the machine's."""
    if floor["free"] is None:
        return "machine floor (scripts/pipe_floor.py): failed"
    return (f"machine floor (scripts/pipe_floor.py, median over repeats): a 1-byte ping-pong between two processes "
            f"over OS pipes takes {fmt(floor['free'], 1)} µs one-way placed freely, {fmt(floor['one-cpu'], 1)} µs "
            f"with both on one CPU; every one-way trip above crosses processes at least once")


def parse_flood(spec: str) -> tuple[int, int, int]:
    """SIZE:COUNT:WINDOW, with COUNT rounded up to whole windows (the sender sends whole windows)."""
    size, count, window = (int(x) for x in spec.split(":"))
    return size, -(-count // window) * window, window


def flood_dataflow(spec: str, result: Path, rx_result: Path, ack_timeout: float, queue_factor: float,
                   rx_policy: str = "drop_oldest") -> list[dict]:
    """tx floods `data`; rx's input queue holds one window (times --queue-factor), which must be enough.

    ``rx_policy`` block: nothing may be lost however loaded the machine is (drop_oldest, the
    default and dora-rs's, may lose a message whose reader was descheduled: docs/guarantees.md).
    """
    size, count, window = parse_flood(spec)
    queue_size = max(1, round(window * queue_factor))
    data = {"source": "tx/data", "queue_size": queue_size}
    if rx_policy != "drop_oldest":
        data["queue_policy"] = rx_policy
    tx_env = {"RESULT_FILE": result, "SIZE": size, "COUNT": count, "WINDOW": window, "ACK_TIMEOUT": ack_timeout}
    rx_env = {"RX_RESULT_FILE": rx_result, "SIZE": size, "WINDOW": window}
    return [node("tx", "flood_tx.py", {"ack": "rx/ack"}, ["data", "done"], tx_env),
            node("rx", "flood_rx.py", {"data": data, "done": "tx/done"},
                 ["ack"], rx_env)]


def run_throughput(runtime: Runtime, spec: str, opts: argparse.Namespace) -> dict:
    """msgs/s and MB/s of acknowledged messages, and `lost` = sent - received by rx."""
    with tempfile.TemporaryDirectory(prefix="dz-bench-res-") as tmp:
        result, rx_result = Path(tmp) / "tx.json", Path(tmp) / "rx.json"
        with dataflow(runtime, flood_dataflow(spec, result, rx_result, opts.ack_timeout, opts.queue_factor,
                                                    opts.rx_policy), opts.timeout) as run:
            error = finish(run, opts.timeout + 30)
        if not result.exists():
            return {"error": error or "sender wrote no result"}
        report = json.loads(result.read_text())
        if rx_result.exists():
            rx = json.loads(rx_result.read_text())
            report.update(rx)
            report["lost"] = report["sent"] - rx["received"]
        else:  # the receiver never reported: count every unacknowledged message as lost
            report["lost"] = report["sent"] - report["acknowledged"]
            report["note"] = "receiver wrote no count; lost = unacknowledged"
        if report["missing_ack_after"] is not None:
            report["lost"] = max(report["lost"], 1)  # a missing ack is a loss even if counts disagree
        if error:
            report["runner_error"] = error
        return report


def busy_dataflow(opts: argparse.Namespace, result: Path) -> list[dict]:
    """busy_tx sends on a timer and computes after each send; busy_rx records each delay."""
    warmup = {"WARMUP": BUSY_WARMUP}
    return [node("tx", "busy_tx.py", {"tick": f"dora/timer/millis/{opts.busy_period_ms}"}, ["stamp", "done"],
                 {"BUSY_MS": opts.busy_ms, "COUNT": opts.busy_count} | warmup),
            node("rx", "busy_rx.py", {"stamp": {"source": "tx/stamp", "queue_size": BUSY_QUEUE}, "done": "tx/done"},
                 env={"RESULT_FILE": result} | warmup)]


def run_busy(runtime: Runtime, opts: argparse.Namespace) -> dict:
    """The receiver's delays (µs) from one send-then-compute run, or an error."""
    report, error = run_for_result(runtime, opts, lambda result: busy_dataflow(opts, result))
    report = report or {}
    if report.get("messages") != opts.busy_count:
        got = report.get("messages", "no")
        return {"error": f"{got} of {opts.busy_count} messages measured. {error or ''}".strip()}
    return report


def pipeline_dataflow(opts: argparse.Namespace, result: Path) -> list[dict]:
    """source (busy_tx.py, no computing) -> stage1 .. stageN (pipeline_relay.py) -> sink (busy_rx.py).
    The first PIPELINE_WARMUP_S of messages are not counted: the sink imports pyarrow on its first."""
    warmup = {"WARMUP": max(BUSY_WARMUP, round(PIPELINE_WARMUP_S * 1000 / opts.pipeline_period_ms))}
    cpu = lambda node_id: {"CPU_FILE": result.parent / f"cpu-{node_id}.json"}  # noqa: E731
    nodes = [node("source", "busy_tx.py", {"tick": f"dora/timer/millis/{opts.pipeline_period_ms}"}, ["stamp", "done"],
                  {"BUSY_MS": 0, "COUNT": opts.pipeline_count} | warmup | cpu("source"))]
    upstream = "source"
    for i in range(1, opts.pipeline_stages + 1):
        stamp = {"source": f"{upstream}/stamp", "queue_size": BUSY_QUEUE}
        nodes.append(node(f"stage{i}", "pipeline_relay.py", {"stamp": stamp, "done": f"{upstream}/done"},
                          ["stamp", "done"], warmup | cpu(f"stage{i}")))
        upstream = f"stage{i}"
    nodes.append(node("sink", "busy_rx.py", {"stamp": {"source": f"{upstream}/stamp", "queue_size": BUSY_QUEUE},
                                             "done": f"{upstream}/done"}, env={"RESULT_FILE": result} | warmup))
    return nodes


def run_pipeline(runtime: Runtime, opts: argparse.Namespace) -> dict:
    """End-to-end delays (µs) through the pipeline, how many of the measured messages were
    lost on the way (counted, never hidden), and each node's CPU over them: % of a core for the
    source, a stage (median) and the sink, and all nodes' CPU time per message sent (µs)."""
    report, error = run_for_result(runtime, opts, lambda result: pipeline_dataflow(opts, result))
    if not report or not report.get("messages"):
        return {"error": f"the sink measured no message. {error or ''}".strip()}
    report["lost"] = opts.pipeline_count - report["messages"]
    cpu = report.pop("cpu", {})
    stages = [cpu.get(f"stage{i}") for i in range(1, opts.pipeline_stages + 1)]
    if "source" not in cpu or None in stages:
        return {"error": f"CPU reports missing: got {sorted(cpu)}"}
    cpu["sink"] = {"cpu_s": report.pop("cpu_s"), "wall_s": report.pop("wall_s")}
    pct = lambda r: r["cpu_s"] / r["wall_s"] * 100 if r["wall_s"] > 0 else None  # noqa: E731
    return report | {"source_cpu_pct": pct(cpu["source"]), "sink_cpu_pct": pct(cpu["sink"]),
                     "stage_cpu_pct": median_or_none([pct(r) for r in stages]),
                     "cpu_us_per_msg": sum(r["cpu_s"] for r in cpu.values()) / opts.pipeline_count * 1e6,
                     "cpu": cpu}


def startup_dataflow(opts: argparse.Namespace, stamps: Path) -> list[dict]:
    """A source and 9 relays, fanned out from the source or chained one after another."""
    nodes = [node("source", "startup_source.py", outputs=["go"])]
    for i in range(1, opts.startup_nodes):
        upstream = "source/go" if opts.startup_shape == "fanout" or i == 1 else f"relay{i - 1}/go"
        nodes.append(node(f"relay{i}", "startup_relay.py", {"go": upstream}, ["go"],
                          {"STAMP_FILE": stamps / f"relay{i}"}))
    return nodes


def run_startup(runtime: Runtime, opts: argparse.Namespace) -> dict:
    """Seconds from spawning the runner to the last node's first input (and to the runner's exit)."""
    with tempfile.TemporaryDirectory(prefix="dz-bench-res-") as tmp:
        stamps = Path(tmp)
        with dataflow(runtime, startup_dataflow(opts, stamps), opts.timeout) as run:
            error = finish(run, opts.timeout + 30)
            exited = time.time()
        times = [float(p.read_text()) for p in stamps.iterdir() if p.read_text().strip()]
        missing = opts.startup_nodes - 1 - len(times)
        if missing or not times:
            return {"error": f"{missing} node(s) never got a first input. {error or ''}".strip()}
        return {"startup_s": max(times) - run.started, "first_input_s": min(times) - run.started,
                "run_total_s": exited - run.started, "nodes": opts.startup_nodes}


def idle_dataflow(ready: Path) -> list[dict]:
    """`waiter` waits for ticker/never, which never comes; `ticker` waits with a 1 s timer."""
    return [node("waiter", "idle_wait.py", {"never": "ticker/never"}, ["never"],
                 {"READY_FILE": ready / "waiter"}, args="waiter"),
            node("ticker", "idle_wait.py", {"tick": "dora/timer/secs/1"}, ["never"],
                 {"READY_FILE": ready / "ticker"}, args="ticker")]


def label(proc: psutil.Process, runner_pid: int) -> str:
    """Which part of the dataflow a process is: runner, one of the probe nodes, or a runtime helper."""
    if proc.pid == runner_pid:
        return "runner"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "helpers"
    for name in ("waiter", "ticker"):
        if "idle_wait.py" in cmd and cmd.rstrip().endswith(name):
            return name
    return "helpers"


def cpu_snapshot(runner_pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user+system) of the runner and every descendant, keyed by pid."""
    root = psutil.Process(runner_pid)
    snap: dict[int, tuple[str, float]] = {}
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            snap[proc.pid] = (label(proc, runner_pid), times.user + times.system)
    return snap


def run_idle(runtime: Runtime, opts: argparse.Namespace) -> dict:
    """CPU % (CPU seconds / wall seconds) while both probe nodes wait, per part of the process tree."""
    with tempfile.TemporaryDirectory(prefix="dz-bench-res-") as tmp:
        ready = Path(tmp)
        stop_after = opts.idle_seconds + opts.timeout
        with dataflow(runtime, idle_dataflow(ready), stop_after) as run:
            both = lambda: (ready / "waiter").exists() and (ready / "ticker").exists()  # noqa: E731
            if not wait_for(both, opts.timeout, run.proc):
                return {"error": f"idle nodes never became ready; log tail:\n{tail(run.log)}"}
            time.sleep(opts.idle_settle)  # let start-up work (imports, discovery) finish
            before, t0 = cpu_snapshot(run.proc.pid), time.monotonic()
            time.sleep(opts.idle_seconds)
            after, wall = cpu_snapshot(run.proc.pid), time.monotonic() - t0
        return idle_report(before, after, wall)


def idle_report(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], wall: float) -> dict:
    """Sum CPU deltas per label; `nodes` is everything in the tree except the runner itself."""
    pct: dict[str, float] = {"runner": 0.0, "waiter": 0.0, "ticker": 0.0, "helpers": 0.0}
    for pid, (name, cpu) in after.items():
        start = before.get(pid, (name, 0.0))[1]
        pct[name] = pct.get(name, 0.0) + (cpu - start) / wall * 100
    pct["nodes"] = sum(v for k, v in pct.items() if k != "runner")
    return {f"{k}_cpu_pct": round(v, 3) for k, v in pct.items()} | {
        "wall_s": round(wall, 3), "processes": sorted(name for name, _ in after.values())}


def scale_dataflow(shape: str, nodes: int, period_ms: int, files: dict[str, Path]) -> list[dict]:
    """``source`` on a timer, then a chain of relays ending in ``sink``, or ``nodes - 1`` readers
    of the source (a fan-out). Queues hold every message of a start-up: none may be dropped."""
    common = {"STAMP_DIR": files["stamps"]}
    flow = [node("source", "scale_source.py", {"tick": f"dora/timer/millis/{period_ms}"}, ["out"],
                 {**common, "NODE_ID": "source", "PAUSE_FILE": files["pause"], "STOP_FILE": files["stop"]})]
    for i in range(1, nodes):
        last = i == nodes - 1
        upstream = "source/out" if shape == "fanout" or i == 1 else f"n{i - 1}/out"
        forward = shape == "chain" and not last
        node_id = "sink" if shape == "chain" and last else f"n{i}"
        entry = node(node_id, "scale_relay.py",  # NODE_ID: dora-rs sets no DORA_NODE_ID
                     {"in": {"source": upstream, "queue_size": BUSY_QUEUE}}, ["out"] if forward else None,
                     {**common, "NODE_ID": node_id, "FORWARD": "1" if forward else "0"})
        flow.append(entry)
    return flow


def pin_in_turn(flow: list[dict], how: str, runtime: Runtime) -> None:
    """Each node of a scale dataflow on one of the benchmark's CPUs (``--scale-pin``): in blocks of
    consecutive nodes, so a chain's neighbours share a CPU (one wake-up per hop stays on it), or in turn."""
    cpus = sorted(os.sched_getaffinity(0))
    for k, entry in enumerate(flow):
        pin(entry, cpus[k * len(cpus) // len(flow)] if how == "blocks" else cpus[k % len(cpus)], runtime)


def chain_upto(node_id: str, nodes: int) -> list[str]:
    """The relays of a scale chain from the source's first reader up to ``node_id``, itself included."""
    if node_id == "sink":
        return [f"n{i}" for i in range(1, nodes - 1)] + ["sink"]
    return [f"n{i}" for i in range(1, int(node_id[1:]) + 1)]


def reported_drops(logs: dict[Path, str]) -> tuple[list[str], dict[str, int]]:
    """The lines in which nodes said an input dropped or lost messages, and the total per node
    (from their log files ``log_<node>.txt``; the source's timer input 'tick' left out: skipped
    ticks are not messages)."""
    said: list[str] = []
    by_node: dict[str, int] = {}
    for path, text in logs.items():
        node_id = path.name.split(".txt")[0].removeprefix("log_")
        for line in text.splitlines():
            m = re.search(r"input '(?!tick')[^']+' (?:dropped|lost) (\d+) message", line)
            if m:
                said.append(f"{node_id}: {line}")
                by_node[node_id] = by_node.get(node_id, 0) + int(m.group(1))
    return said, by_node


def tree_of(root_pid: int) -> list[psutil.Process]:
    """The runner and every process under it."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    """User+system CPU seconds of each process that is still there, keyed by pid."""
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def tree_cpu_pct(root_pid: int, seconds: float) -> float:
    """CPU % of one core used by the whole tree over ``seconds`` (processes present at both ends)."""
    procs = tree_of(root_pid)
    before, t0 = cpu_seconds(procs), time.monotonic()
    time.sleep(seconds)
    after, wall = cpu_seconds(procs), time.monotonic() - t0
    return sum(after[p] - before[p] for p in after if p in before) / wall * 100


def tree_memory_and_links(root_pid: int) -> tuple[float, int, int]:
    """Total PSS (MiB) of the tree, how many processes it has, and its established TCP connections
    (socket ends within the tree count once per pair, others once)."""
    pss, count, ends = 0.0, 0, []
    for p in tree_of(root_pid):
        with contextlib.suppress(psutil.Error):
            pss += p.memory_full_info().pss / (1 << 20)
            count += 1
            conns = p.net_connections(kind="tcp") if hasattr(p, "net_connections") else p.connections(kind="tcp")
            ends += [(c.laddr, c.raddr) for c in conns if c.status == psutil.CONN_ESTABLISHED and c.raddr]
    local = {e[0] for e in ends}
    inside = sum(1 for e in ends if e[1] in local)
    return pss, count, inside // 2 + (len(ends) - inside)


def run_scale(runtime: Runtime, opts: argparse.Namespace, shape: str, nodes: int) -> dict:
    """One run of the scale case: see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="dz-bench-res-") as tmp:
        files = {"stamps": Path(tmp) / "stamps", "pause": Path(tmp) / "pause", "stop": Path(tmp) / "stop"}
        files["stamps"].mkdir()
        readers = nodes - 1
        flow = scale_dataflow(shape, nodes, opts.scale_period_ms, files)
        if opts.scale_pin:
            pin_in_turn(flow, opts.scale_pin, runtime)
        with dataflow(runtime, flow, opts.timeout) as run:
            firsts = lambda: list(files["stamps"].glob("*.first"))  # noqa: E731
            if not wait_for(lambda: len(firsts()) >= readers, opts.scale_first_timeout, run.proc):
                return {"error": f"{readers - len(firsts())} of {readers} node(s) got no message within "
                                 f"{opts.scale_first_timeout:g} s; log tail:\n{tail(run.log)}"}
            first_s = max(float(p.read_text()) for p in firsts()) - run.started
            start_cpu = sum(cpu_seconds(tree_of(run.proc.pid)).values())  # start-up's CPU, all processes
            time.sleep(1.0)
            busy = tree_cpu_pct(run.proc.pid, opts.scale_seconds)
            pss, procs, tcp = tree_memory_and_links(run.proc.pid)
            files["pause"].touch()
            time.sleep(1.0)
            idle = tree_cpu_pct(run.proc.pid, opts.scale_seconds)
            files["stop"].touch()
            stopped = time.time()
            error = finish(run, opts.timeout)
            end_s = time.time() - stopped
            # the runner's output and every node log (dora-zenoh's; dora-rs writes its own elsewhere)
            node_logs = {p: p.read_text(errors="replace") for p in run.workdir.glob("logs/**/log_*.txt*")}
            text = "".join([run.log.read_text(errors="replace") if run.log.exists() else "", *node_logs.values()])
        problems = [w for w in ("ZError", "panicked", "Traceback") if w in text]
        # what the nodes said they dropped or lost (each at its own data input), and exits that gave up
        # waiting for a reader: a loss the nodes did not report is a defect, a reported one is not.
        # From the node logs only: the runner's output may repeat their lines.
        said, by_node = reported_drops(node_logs)
        reported = sum(by_node.values())
        gave_up = sum(len(re.findall(r"exiting after waiting", log)) for log in node_logs.values())
        sent = json.loads((files["stamps"] / "source.json").read_text())["sent"] \
            if (files["stamps"] / "source.json").exists() else None
        lost, unreported, late, short = 0, 0, [], []
        for p in files["stamps"].glob("*.json"):
            if p.stem == "source" or sent is None:
                continue
            got = json.loads(p.read_text())
            lost += max(0, sent - got["count"])
            # what this reader lacks beyond the drops said on its way from the source (a chain's
            # relays up to it, or the reader itself): a loss nobody reported
            upstream = [p.stem] if shape == "fanout" else chain_upto(p.stem, nodes)
            unreported += max(0, sent - got["count"] - sum(by_node.get(n, 0) for n in upstream))
            if got["first_seq"] not in (0, None):
                late.append(f"{p.stem} first got #{got['first_seq']}")
            if got["count"] != sent:
                short.append(f"{p.stem}: {got['count']} of {sent}")
        done = len(list(files["stamps"].glob("*.json"))) - 1
        if error or problems or late or sent is None or done != readers:
            return {"error": (error or "") + (f" log has {problems}" if problems else "")
                    + (f" {done} of {readers} readers reported" if done != readers else "")
                    + (f" edges that missed the first message: {late[:5]}" if late else "")}
        return {"first_s": first_s, "start_cpu_s": start_cpu, "busy_cpu_pct": busy, "idle_cpu_pct": idle, "pss_mib_per_node": pss / procs,
                "processes": procs, "tcp_connections": tcp, "end_s": end_s, "sent": sent, "lost": lost,
                "reported_lost": reported, "unreported_lost": unreported, "exits_that_gave_up": gave_up, "short_readers": short[:10],
                "reported_lines": said[:20]}


def scale_table(summary: dict, names: list[str]) -> str:
    """One row per shape, size and runtime."""
    header = ["case", "runtime", *(h for _, h, _ in SCALE_COLUMNS)]
    rows = []
    for case, per in summary.items():
        for n in names:
            s = per[n]
            rows.append([case, n, *(fmt(s[k], d) if s["runs"] else "failed" for k, _, d in SCALE_COLUMNS)])
    return table(header, rows)


# ---------------------------------------------------------------- orchestration


def median_or_none(values: list[float | None]) -> float | None:
    """Median of the figures that exist; None when every run failed."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def turns(players: dict[str, Callable[[], dict] | str], repeat: int, what: str) -> dict[str, list[dict]]:
    """Call each player in turn, `repeat` times over; a string player is unavailable and says why."""
    runs: dict[str, list[dict]] = {name: [] for name in players}
    for rep in range(repeat):
        for name, play in players.items():
            if isinstance(play, str):
                runs[name].append({"error": f"unavailable: {play}"})
                continue
            t0 = time.monotonic()
            res = play()
            status = "FAILED" if "error" in res else "ok"
            print(f"  {what} {name} repeat {rep + 1}/{repeat}: {status} ({time.monotonic() - t0:.1f} s)"
                  + (f": {res['error'][:300]}" if "error" in res else ""), flush=True)
            runs[name].append(res)
    return runs


def players(runtimes: dict[str, Runtime | str], case: Callable[[Runtime], dict]) -> dict[str, Callable[[], dict] | str]:
    """Bind a case to every available runtime; unavailable ones stay as their reason."""
    return {name: (rt if isinstance(rt, str) else (lambda rt=rt: case(rt))) for name, rt in runtimes.items()}


def summarize_latency(runs: dict[str, list[dict]], sizes: list[str]) -> dict:
    """Per size and runtime: median over repeats of p50 and p90, and of the ping process's CPU
    per round trip (microseconds)."""
    out: dict[str, dict] = {}
    for size in sizes:
        out[size] = {}
        for name, reps in runs.items():
            ok = [r[size] for r in reps if "error" not in r and size in r]
            out[size][name] = {"p50_us": median_or_none([r["one_way_p50_us"] for r in ok]),
                               "p90_us": median_or_none([r["one_way_p90_us"] for r in ok]),
                               "cpu_us": median_or_none([r.get("cpu_us") for r in ok]),
                               "runs": len(ok)}
    return out


def summarize_throughput(runs: dict[str, list[dict]]) -> dict:
    """Per runtime: median msgs/s and MB/s, and the total lost over all repeats (never hidden)."""
    out = {}
    for name, reps in runs.items():
        ok = [r for r in reps if "error" not in r]
        out[name] = {"msgs_per_s": median_or_none([r["msgs_per_s"] for r in ok]),
                     "MB_per_s": median_or_none([r["MB_per_s"] for r in ok]),
                     "acknowledged_median": median_or_none([r["acknowledged"] for r in ok]),
                     "lost": sum(r["lost"] for r in ok) if ok else None,
                     "runs_with_loss": sum(1 for r in ok if r["lost"]),
                     "runs": len(ok), "failed": len(reps) - len(ok)}
    return out


def summarize_medians(runs: dict[str, list[dict]], keys: tuple[str, ...]) -> dict:
    """Per runtime: the median over its good repeats of each of ``keys``, and how many there were."""
    out = {}
    for name, reps in runs.items():
        ok = [r for r in reps if "error" not in r]
        out[name] = {k: median_or_none([r[k] for r in ok]) for k in keys} | {"runs": len(ok)}
    return out


def summarize_startup(runs: dict[str, list[dict]]) -> dict:
    """Per runtime: median, min and max startup seconds over the repeats."""
    out = {}
    for name, reps in runs.items():
        vals = [r["startup_s"] for r in reps if "error" not in r]
        out[name] = {"median_s": median_or_none(vals), "min_s": min(vals) if vals else None,
                     "max_s": max(vals) if vals else None,
                     "run_total_median_s": median_or_none([r["run_total_s"] for r in reps if "error" not in r]),
                     "runs": len(vals)}
    return out


def errors_of(case: str, runs: dict[str, list[dict]]) -> list[str]:
    """Every failed run as one readable line (the JSON keeps the full text)."""
    return [f"{case} {name} repeat {i + 1}: {r['error']}" for name, reps in runs.items()
            for i, r in enumerate(reps) if "error" in r]


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    """A table cell: the number, or 'failed' when no run produced it."""
    return "failed" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    """a/b as a table cell, '-' when either side is missing."""
    return f"{a / b:.2f}" if a is not None and b else "-"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table, padded so it also reads well in a terminal."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|",
                      *(line(r) for r in rows)])


def human_size(size: int) -> str:
    """8 B, 64 KiB, 1 MiB: sizes as people say them."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def latency_table(summary: dict, names: list[str]) -> str:
    """p50 (p90) per runtime, and the dora-zenoh ratios of the p50s (lower is better)."""
    others = [n for n in names if n != DZ]
    header = ["size", *(f"{n} p50 (p90) µs" for n in names), *(f"{DZ}/{n}" for n in others)]
    rows = []
    for size, per in summary.items():
        cells = [f"{fmt(per[n]['p50_us'])} ({fmt(per[n]['p90_us'])})" if per[n]["p50_us"] is not None
                 else "failed" for n in names]
        rows.append([human_size(int(size)), *cells, *(ratio(per[DZ]["p50_us"], per[n]["p50_us"]) for n in others)])
    return table(header, rows)


def latency_cpu_table(summary: dict, names: list[str]) -> str:
    """CPU time of the ping process (all its threads) per round trip, per runtime and size.

    Only the node's own process: dora-rs's daemon, which forwards every message, is not in it."""
    rows = [[human_size(int(size)), *(fmt(per[n].get("cpu_us")) for n in names)] for size, per in summary.items()]
    return table(["size", *(f"{n} µs" for n in names)], rows)


def loss_cell(s: dict) -> str:
    """0, or LOST with the count and how many runs lost anything; failed runs say so."""
    if s["lost"] is None:
        return "failed"
    text = "0" if s["lost"] == 0 else f"LOST {s['lost']} ({s['runs_with_loss']}/{s['runs']} runs)"
    return text + (f", {s['failed']} failed" if s["failed"] else "")


def throughput_table(summary: dict, names: list[str]) -> str:
    """msgs/s, MB/s and lost per runtime for every size:window, plus dora-zenoh/dora-rs (higher is better)."""
    header = ["size", "window", *(f"{n} {c}" for n in names for c in ("msg/s", "MB/s", "lost"))]
    if RS in names and DZ in names:
        header.append(f"{DZ}/{RS} msg/s")
    rows = []
    for spec, per in summary.items():
        size, _, window = parse_flood(spec)
        row = [human_size(size), str(window)]
        for n in names:
            row += [rate_cell(per[n], "msgs_per_s", 0), rate_cell(per[n], "MB_per_s", 1), loss_cell(per[n])]
        if RS in names and DZ in names:
            lossy = per[DZ]["lost"] or per[RS]["lost"]
            row.append(ratio(per[DZ]["msgs_per_s"], per[RS]["msgs_per_s"]) + ("*" if lossy else ""))
        rows.append(row)
    note = ("\n* a runtime lost messages: its rate covers only the windows acknowledged before the loss"
            if any(s["lost"] for per in summary.values() for s in per.values()) else "")
    return table(header, rows) + note


def rate_cell(s: dict, key: str, digits: int) -> str:
    """A rate, 'none acked' when a loss came in the first window, 'failed' when no run finished."""
    if not s["runs"]:
        return "failed"
    return "none acked" if s[key] is None else fmt(s[key], digits)


def busy_table(summary: dict, names: list[str]) -> str:
    """Delay quantiles per runtime, and dora-zenoh's ratios of p50 and p99 (lower is better)."""
    return figures_table(summary, names, BUSY_COLUMNS, ["p50_us", "p99_us"])


def pipeline_table(summary: dict, names: list[str]) -> str:
    """End-to-end delay quantiles and CPU per runtime, and dora-zenoh's ratios (lower is better)."""
    return figures_table(summary, names, PIPELINE_COLUMNS, ["p50_us", "p99_us", "cpu_us_per_msg"])


def figures_table(summary: dict, names: list[str], columns: list[tuple[str, str, int]], ratios: list[str]) -> str:
    """One row of ``columns`` per runtime ('failed' where no run finished), and in the other
    runtimes' rows dora-zenoh's ratios of the ``ratios`` figures to theirs."""
    others = [n for n in names if n != DZ]
    header = ["runtime", *(head for _, head, _ in columns)]
    header += [f"{DZ}/{n} " + ", ".join(RATIOS[k] for k in ratios) for n in others]
    rows = []
    for n in names:
        s = summary[n]
        row = [n, *(fmt(s[k], digits) if s["runs"] else "failed" for k, _, digits in columns)]
        row += [", ".join(ratio(summary[DZ][k], s[k]) for k in ratios) if n == o else "" for o in others]
        rows.append(row)
    return table(header, rows)


def startup_table(summary: dict, names: list[str], nodes: int) -> str:
    """Median (min-max) seconds to every node's first input, and to the runner's exit."""
    header = ["runtime", f"{nodes} nodes to first input, s (min-max)", "to runner exit, s"]
    if RS in names and DZ in names:
        header.append(f"{DZ}/{RS}")
    rows = []
    for n in names:
        s = summary[n]
        cell = f"{fmt(s['median_s'], 3)} ({fmt(s['min_s'], 3)}-{fmt(s['max_s'], 3)})" if s["runs"] else "failed"
        row = [n, cell, fmt(s["run_total_median_s"], 3)]
        if RS in names and DZ in names:
            row.append(ratio(summary[DZ]["median_s"], summary[RS]["median_s"]) if n == DZ else "")
        rows.append(row)
    return table(header, rows)


def idle_table(summary: dict, names: list[str]) -> str:
    """CPU % per part of the dataflow while it waits (CPU seconds per wall second x 100)."""
    header = ["runtime", "waiter node %", "slow-timer node %", "all node processes %", "runner %"]
    rows = [[n, *(fmt(summary[n][k], 2) for k in ("waiter_cpu_pct", "ticker_cpu_pct", "nodes_cpu_pct",
                                                  "runner_cpu_pct"))] for n in names]
    return table(header, rows)


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (what a reader compares machines by)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version_of(dist: str) -> str:
    """An installed distribution's version, or 'not installed'."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict:
    """What the figures depend on: CPU, cores, Python, Zenoh, load, date."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "zenoh": version_of("eclipse-zenoh"), "dora_zenoh": version_of("dora-zenoh"),
            "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "loadavg_start": list(os.getloadavg()), "cpus": sorted(os.sched_getaffinity(0)),
            "idle": idle_settings()}


def machine_line(m: dict) -> str:
    """The one-line machine description printed under the tables."""
    load = "/".join(f"{x:.2f}" for x in m["loadavg_start"])
    end = "/".join(f"{x:.2f}" for x in m.get("loadavg_end", []))
    rs = f", dora-rs {m['dora_rs']}" if m.get("dora_rs") else ""
    pinned = (f" (benchmark pinned to CPU {','.join(map(str, m['cpus']))})"
              if len(m.get("cpus", [])) < (m["cores"] or 0) else "")
    return (f"machine: {m['cpu']}, {m['cores']} cores{pinned}, Python {m['python']}, zenoh {m['zenoh']}, "
            f"dora-zenoh {m['dora_zenoh']}{rs}; {m['date']}; load avg (1/5/15 min) {load} at start, {end} at end"
            f"\n{idle_line(m.get('idle', {}))}")


def idle_line(idle: dict) -> str:
    """How idle CPUs sleep, which decides what waking one costs (see dora_zenoh/cpulatency.py)."""
    parts = [f"cpuidle {idle.get('cpuidle_driver') or 'unknown'}/{idle.get('cpuidle_governor') or 'unknown'}"]
    if idle.get("guest_halt_poll_ns") is not None:
        parts.append(f"guest_halt_poll_ns {idle['guest_halt_poll_ns']}")
    limit = idle.get("cpu_latency_limit_us")
    if limit is not None:
        parts.append("no PM QoS request" if limit >= 2_000_000_000 else f"PM QoS limit {limit} µs")
    return "idle CPUs: " + ", ".join(parts)


def draw_png(path: Path, summary: dict, names: list[str]) -> None:
    """Latency p50 per size per runtime on log-log axes, if matplotlib is there (it is not a dependency)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--png: matplotlib is not installed; `{sys.executable} -m pip install matplotlib` to draw charts")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = [int(s) for s in summary]
    for n in names:
        points = [(s, summary[str(s)][n]["p50_us"]) for s in sizes if summary[str(s)][n]["p50_us"] is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=n)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [human_size(s) for s in sizes])
    ax.set_xlabel("message size")
    ax.set_ylabel("one-way latency p50 (µs)")
    ax.set_title("two-node ping-pong, one-way latency (lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"chart written to {path}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; unset ones take --quick's or the full run's defaults."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma list of {', '.join(CASES + OPT_IN)} (default: all but {', '.join(OPT_IN)})")
    ap.add_argument("--machines-args", default="",
                    help="machines case: more arguments for scripts/bench_machines.py (e.g. '--cpus 0,1 --sizes 8')")
    ap.add_argument("--compare", action="store_true",
                    help="also run dora-rs 1.1.0 (all cases) and plain zenoh (latency floor)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: sizes {QUICK['sizes']}, {QUICK['rounds']} rounds, 1 repeat, small floods")
    ap.add_argument("--sizes", help=f"latency message sizes in bytes (default {FULL['sizes']})")
    ap.add_argument("--rounds", type=int, help=f"measured round trips per size (default {FULL['rounds']})")
    ap.add_argument("--warmup", type=int, help=f"unmeasured round trips per size first (default {FULL['warmup']})")
    ap.add_argument("--repeat", type=int, help=f"runs per case and runtime; figures are medians (default {FULL['repeat']})")
    ap.add_argument("--flood", help=f"throughput runs as SIZE:COUNT:WINDOW,... (default {FULL['flood']})")
    ap.add_argument("--with-record", action="store_true",
                    help="dora-zenoh runs every case's dataflow with `run --record` (compare with a run "
                         "without it: the recorder's cost to latency and throughput)")
    ap.add_argument("--closed", action="store_true",
                    help=f"also run every case as a closed dataflow (`run --secure`), as runtime '{DZ_CLOSED}': "
                         "what credentials and access control cost")
    ap.add_argument("--daemon", action="store_true",
                    help=f"also run every case with every node on a daemon of this machine (a coordinator "
                         f"and `dora-zenoh daemon`, scripts/bench_daemon.py), as runtime '{DZ_DAEMON}'")
    ap.add_argument("--record-runs", help="record case: SIZE:RATE:SECONDS[:COMPRESSION],... (default "
                    f"{FULL['record_runs']}: 8 B at 100k msg/s, 1 MiB at 1 GiB/s)")
    ap.add_argument("--writer-runs", help="record case: the MCAP writer alone, SIZE:COUNT,... each with zstd, "
                    f"lz4 and none (default {FULL['writer_runs']}; '' skips it)")
    ap.add_argument("--ack-timeout", type=float, default=5.0,
                    help="seconds the sender waits for a window's ack before declaring a message lost")
    ap.add_argument("--queue-factor", type=float, default=1.0,
                    help="throughput receiver's queue_size = window x this (1: exactly one window)")
    ap.add_argument("--rx-policy", choices=("drop_oldest", "block"), default="drop_oldest",
                    help="throughput receiver's queue_policy (default drop_oldest, as in dora-rs; with block "
                         "nothing may be lost even on a loaded machine)")
    ap.add_argument("--latency-policy", choices=("drop_oldest", "block"), default="drop_oldest",
                    help="latency case: ping's and pong's queue_policy (block inputs take a slower path: "
                         "docs/machines.md, Latency and throughput across machines)")
    ap.add_argument("--busy-ms", type=float, default=10.0, help="busy case: computing time after each send, ms")
    ap.add_argument("--busy-period-ms", type=int, default=20, help="busy case: the sender's timer period, ms")
    ap.add_argument("--busy-count", type=int, help=f"busy case: measured messages (default {FULL['busy_count']})")
    ap.add_argument("--pipeline-period-ms", type=int, default=1, help="pipeline case: the source's timer period, ms")
    ap.add_argument("--pipeline-stages", type=int, default=3, help="pipeline case: forwarding stages between source and sink")
    ap.add_argument("--pipeline-count", type=int,
                    help=f"pipeline case: measured messages (default {FULL['pipeline_count']})")
    ap.add_argument("--startup-nodes", type=int, default=10, help="nodes in the startup dataflow (source + relays)")
    ap.add_argument("--startup-shape", choices=("fanout", "chain"), default="fanout",
                    help="relays all read the source, or each reads the previous one")
    ap.add_argument("--scale-nodes", help=f"scale case: dataflow sizes, comma list (default {FULL['scale_nodes']})")
    ap.add_argument("--scale-shapes", default="chain,fanout", help="scale case: chain, fanout or both")
    ap.add_argument("--scale-period-ms", type=int, default=20, help="scale case: the source's timer period, ms")
    ap.add_argument("--scale-seconds", type=float,
                    help=f"scale case: each CPU measuring window, s (default {FULL['scale_seconds']})")
    ap.add_argument("--scale-pin", choices=("blocks", "alternate"),
                    help="scale case: pin every node to one CPU of the benchmark's: 'blocks' puts the "
                         "source and the first nodes on the first CPU and so on (a chain's neighbours "
                         "share one), 'alternate' deals them out in turn (neighbours on different CPUs)")
    ap.add_argument("--scale-first-timeout", type=float, default=120,
                    help="scale case: how long to wait for every node's first message, s")
    ap.add_argument("--idle-seconds", type=float, help=f"idle measuring window (default {FULL['idle_seconds']})")
    ap.add_argument("--idle-settle", type=float, default=1.0, help="seconds to wait after nodes are ready")
    ap.add_argument("--cpus", type=parse_cpus, metavar="LIST",
                    help="run every process of the benchmark on these CPUs only, e.g. 0 or 0,1 or 0-3 "
                         "(default: all); shows what cross-core wake-ups cost on this machine")
    ap.add_argument("--latency-cpus", type=parse_cpu_pair, metavar="PING,PONG",
                    help="latency case only: ping on CPU PING and pong on CPU PONG, every runtime alike "
                         "(dora-zenoh by `cpu_affinity`, the others by taskset), e.g. 0,0 (one core) or 0,1")
    ap.add_argument("--cpu-latency-us", type=int, metavar="US",
                    help="hold a PM QoS request (/dev/cpu_dma_latency) for the whole benchmark, every runtime "
                         "alike, as `dora-zenoh run --cpu-latency-us` does for one dataflow; 0: idle CPUs poll")
    ap.add_argument("--timeout", type=float, default=240, help="bound on any one dataflow run, seconds")
    ap.add_argument("--json", type=Path, default=Path("bench-results/bench.json"), help="where every figure goes")
    ap.add_argument("--png", type=Path, help="draw the latency chart here (needs matplotlib)")
    ap.add_argument("--dora-zenoh-cmd", default=default_dora_zenoh_cmd(), help="how to invoke dora-zenoh")
    ap.add_argument("--dora-rs-venv", type=Path, default=Path(os.environ.get("BENCH_DORA_RS_VENV", "/tmp/bench-dora-rs")),
                    help="venv for dora-rs 1.1.0, created on first use")
    opts = ap.parse_args(argv)
    for key, value in (QUICK if opts.quick else FULL).items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    opts.case_list = [c.strip() for c in opts.cases.split(",") if c.strip()]
    unknown = set(opts.case_list) - set(CASES + OPT_IN)
    if unknown:
        ap.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES + OPT_IN)}")
    return opts


def parse_cpus(spec: str) -> list[int]:
    """``0,2-3`` -> [0, 2, 3]; only CPUs this process may run on."""
    try:
        cpus = parse_cpu_list(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{spec!r}: {exc}") from None
    allowed = os.sched_getaffinity(0)
    if not set(cpus) <= allowed:
        raise argparse.ArgumentTypeError(f"{spec!r}: this process may run on CPUs {format_cpu_list(allowed)} only")
    return cpus


def parse_cpu_pair(spec: str) -> tuple[int, int]:
    """``0,1`` -> (0, 1): ping's CPU and pong's (the same CPU twice is allowed)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{spec!r}: give two CPUs, ping's and pong's, e.g. 0,1 or 0,0")
    parse_cpus(spec)  # both allowed here
    return int(parts[0]), int(parts[1])


def runtimes_for(opts: argparse.Namespace, machine: dict) -> dict[str, Runtime | str]:
    """dora-zenoh, plus dora-rs with --compare; a string in place of a Runtime says why it is unavailable."""
    runtimes: dict[str, Runtime | str] = {DZ: dora_zenoh_runtime(opts.dora_zenoh_cmd, opts.with_record)}
    if opts.closed:
        runtimes[DZ_CLOSED] = dora_zenoh_runtime(opts.dora_zenoh_cmd, opts.with_record, closed=True)
    if opts.daemon:
        runtimes[DZ_DAEMON] = dora_zenoh_daemon_runtime(opts.dora_zenoh_cmd)
    if opts.compare:
        try:
            runtimes[RS] = dora_rs_runtime(opts.dora_rs_venv)
            machine["dora_rs"] = "1.1.0"
        except Unavailable as exc:
            print(f"dora-rs unavailable: {exc}", flush=True)
            runtimes[RS] = str(exc)
    return runtimes


def median_case(case: str, run: Callable[[Runtime], dict], keys: tuple[str, ...],
                runtimes: dict[str, Runtime | str], opts: argparse.Namespace, report: dict) -> dict:
    """Run ``case`` in turns, file its runs, the medians of ``keys`` and its errors in ``report``;
    returns the medians."""
    print(f"{case} ...", flush=True)
    runs = turns(players(runtimes, run), opts.repeat, case)
    summary = summarize_medians(runs, keys)
    report[case] = {"runs": runs, "summary": summary}
    report["errors"] += errors_of(case, runs)
    return summary


def run_cases(opts: argparse.Namespace, runtimes: dict[str, Runtime | str], report: dict) -> list[str]:
    """Run the selected cases (runtimes taking turns), filling report; return the printed tables."""
    names, out = list(runtimes), []
    if "latency" in opts.case_list:
        print("latency ...", flush=True)
        who = players(runtimes, lambda rt: run_latency(rt, opts))
        if opts.compare:
            who[ZENOH] = lambda: run_zenoh_floor(opts)
            who[ZENOH_1T] = lambda: run_zenoh_floor(opts, zconfig.NODE_RUNTIME)
        runs = turns(who, opts.repeat, "latency")
        summary = summarize_latency(runs, opts.sizes.split(","))
        floor_runs = [run_pipe_floor(opts) for _ in range(opts.repeat)]
        floor = summarize_pipe_floor(floor_runs)
        report["latency"] = {"runs": runs, "summary": summary, "pipe_floor": {"runs": floor_runs, "summary": floor}}
        report["errors"] += errors_of("latency", runs)
        report["errors"] += [f"pipe floor: {r['error']}" for r in floor_runs if "error" in r]
        placed = (f"; ping on CPU {opts.latency_cpus[0]}, pong on CPU {opts.latency_cpus[1]}"
                  if opts.latency_cpus else "")
        out.append(f"one-way latency, median over repeats of p50 (p90), µs; ratios of p50, lower is better{placed}\n"
                   + latency_table(summary, list(runs)) + "\n" + pipe_floor_line(floor)
                   + "\n\nCPU time of the ping process per round trip (its own threads; not dora-rs's daemon)\n"
                   + latency_cpu_table(summary, list(runs)))
    if "throughput" in opts.case_list:
        print("throughput ...", flush=True)
        report["throughput"] = {"runs": {}, "summary": {}}
        for spec in filter(None, opts.flood.split(",")):
            runs = turns(players(runtimes, lambda rt, s=spec: run_throughput(rt, s, opts)), opts.repeat,
                         f"throughput {spec}")
            report["throughput"]["runs"][spec] = runs
            report["throughput"]["summary"][spec] = summarize_throughput(runs)
            report["errors"] += errors_of(f"throughput {spec}", runs)
        queue = "window" if opts.queue_factor == 1 else f"window x {opts.queue_factor:g}"
        queue += "" if opts.rx_policy == "drop_oldest" else f", queue_policy {opts.rx_policy}"
        out.append(f"windowed throughput, median over repeats (ack after every window; receiver queue_size = "
                   f"{queue}); lost = sent - received, summed over repeats\n"
                   + throughput_table(report["throughput"]["summary"], names))
    if "busy" in opts.case_list:
        summary = median_case("busy", lambda rt: run_busy(rt, opts), BUSY_KEYS, runtimes, opts, report)
        out.append(f"send, then compute {opts.busy_ms:g} ms (every {opts.busy_period_ms} ms): one-way delay to the "
                   f"receiver, median over repeats, µs; lower is better\n" + busy_table(summary, names))
    if "pipeline" in opts.case_list:
        summary = median_case("pipeline", lambda rt: run_pipeline(rt, opts), PIPELINE_KEYS, runtimes, opts, report)
        out.append(f"pipeline: source every {opts.pipeline_period_ms} ms -> {opts.pipeline_stages} forwarding stages -> "
                   "sink; end-to-end delay and CPU over the measured messages, medians over repeats; lower is better\n"
                   + pipeline_table(summary, names))
    if "startup" in opts.case_list:
        print("startup ...", flush=True)
        runs = turns(players(runtimes, lambda rt: run_startup(rt, opts)), opts.repeat, "startup")
        summary = summarize_startup(runs)
        report["startup"] = {"runs": runs, "summary": summary, "shape": opts.startup_shape}
        report["errors"] += errors_of("startup", runs)
        out.append(f"startup ({opts.startup_shape}), from spawning the runner; median over repeats\n"
                   + startup_table(summary, names, opts.startup_nodes))
    if "record" in opts.case_list:
        print("record ...", flush=True)
        writer = [run_writer(spec, comp) for spec in filter(None, opts.writer_runs.split(","))
                  for comp in ("zstd", "lz4", "none")]
        report["record_writer"] = writer
        report["record"] = {spec: [run_record(spec, opts) for _ in range(opts.repeat)]
                            for spec in filter(None, opts.record_runs.split(","))}
        report["errors"] += [f"record {spec}: {r['error']}" for spec, rs in report["record"].items()
                             for r in rs if "error" in r]
        if writer:
            out.append("record, the MCAP writer alone (BagWriter.write of SIZE-byte random payloads with a "
                       "dora-zenoh attachment, no Zenoh, one thread): what one core can write\n"
                       + writer_table(writer))
        out.append(RECORD_LEGEND + record_table(report["record"]))
    if "idle" in opts.case_list:
        summary = median_case("idle", lambda rt: run_idle(rt, opts), IDLE_KEYS, runtimes, opts, report)
        report["idle"]["seconds"] = opts.idle_seconds
        tick = 100 / (os.sysconf("SC_CLK_TCK") * opts.idle_seconds)
        out.append(f"idle CPU over {opts.idle_seconds:g} s, % of one core, median over repeats "
                   f"(resolution: one clock tick = {tick:.2f} %)\n"
                   + idle_table(summary, names))
    if "scale" in opts.case_list:
        print("scale ...", flush=True)
        report["scale"] = {"runs": {}, "summary": {}}
        for shape in filter(None, opts.scale_shapes.split(",")):
            for count in (int(c) for c in opts.scale_nodes.split(",") if c.strip()):
                case = f"{shape} {count}"
                runs = turns(players(runtimes, lambda rt, s=shape, c=count: run_scale(rt, opts, s, c)),
                             opts.repeat, f"scale {case}")
                report["scale"]["runs"][case] = runs
                report["scale"]["summary"][case] = summarize_medians(runs, SCALE_KEYS)
                report["errors"] += errors_of(f"scale {case}", runs)
        out.append(f"scale: source every {opts.scale_period_ms} ms; chain = source -> relays -> sink, fanout = "
                   f"source -> N-1 readers; CPU = whole process tree, % of one core over {opts.scale_seconds:g} s; "
                   + (f"every node pinned to one CPU ({opts.scale_pin}); " if opts.scale_pin else "")
                   + "medians over repeats\n" + scale_table(report["scale"]["summary"], names))
    if "machines" in opts.case_list:
        out.append(run_machines(opts, report))
    return out


def run_machines(opts: argparse.Namespace, report: dict) -> str:
    """The machines case: scripts/bench_machines.py once per link (--repeat runs each), its
    reports under ``report["machines"]``, its tables returned; a failed run is an error."""
    print("machines ...", flush=True)
    report["machines"] = {}
    tables = []
    for label, link in MACHINE_LINKS.items():
        with tempfile.TemporaryDirectory(prefix="dz-bench-machines-") as tmp:
            out = Path(tmp) / "machines.json"
            argv = [sys.executable, str(MACHINES), *link, "--repeat", str(opts.repeat),
                    *shlex.split(opts.machines_args), "--json", str(out)]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
            except subprocess.TimeoutExpired:
                report["errors"].append(f"machines {label}: no result within an hour")
                continue
            if proc.returncode != 0 or not out.exists():
                report["errors"].append(f"machines {label}: {(proc.stderr or proc.stdout).strip()[-600:]}")
                continue
            report["machines"][label] = json.loads(out.read_text())
            tables.append(proc.stdout.strip())
            lost = [f"{spec}: {r['lost']} lost" for run in report["machines"][label]["runs"]
                    for spec, r in run.get(DZ, {}).get("throughput", {}).items() if r.get("lost")]
            report["errors"] += [f"machines {label}: {DZ} {what}" for what in lost]
    return "two machines (network namespaces), dora-zenoh against plain zenoh-python on the same link\n" + \
        ("\n\n".join(tables) or "no run completed (see FAILED below)")


RECORD_LEGEND = """\
record (`run --record`, zstd unless the run is SIZE:RATE:SECONDS:COMPRESSION): the recorder is the paced
sender's only reader; one line per repeat.
  sent, msg/s, MB/s    what the sender put and at what rate it really did (its own limit shows here)
  in file, dropped     messages in the file; messages the recorder dropped itself (buffer full, counted)
  lost before          messages the sender numbered that never reached the recorder (seq gaps + missing
                       end); must be 0
  rec CPU              the recorder process's CPU over the recording, % of one core, and µs per message
  zenoh/recv/write     its CPU per message by stage, µs: Zenoh's threads, the drain thread (copy into the
                       buffer), the writer thread (MCAP records, compression, disk)
  writer msg/s, MB/s   what the writer thread alone could take at that cost, on one core
  buf peak             most bytes waiting in the recorder's buffer (it drops past --buffer, 512 MiB)
  replay µs            `replay --stats` of that file onto its keys: how late each message's put returned
                       vs its scaled recorded time, p50/p99/max (the target: p99 under 1000 µs on an idle
                       machine); --realtime: the same with SCHED_FIFO ('-' when refused: not root)
"""


def run_writer(spec: str, compression: str) -> dict:
    """The MCAP writer alone: ``count`` messages of ``size`` random bytes, written as the recorder's
    writer thread does (BagWriter.write), timed by this thread's CPU clock and the wall clock."""
    from dora_zenoh.record.writer import BagWriter
    from dora_zenoh.wire import codec

    size, count = (int(x) for x in spec.split(":"))
    payload = os.urandom(size)
    t0 = time.time_ns()
    atts = [codec.attachment(i, t0 + i * 1000, None) for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="dz-bench-writer-") as tmp:
        w = BagWriter(Path(tmp) / "w.mcap", prefix="dora", dataflow="bench", compression=compression)
        c0, w0 = time.thread_time(), time.perf_counter()
        for i in range(count):
            w.write("dora/bench/tx/data", payload, "application/octet-stream", atts[i], t0 + i * 1000, i)
        w.close()
        cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    return {"size": size, "count": count, "compression": compression, "cpu_s": cpu, "wall_s": wall,
            "us_per_msg": cpu / count * 1e6, "msg_s": count / cpu if cpu else 0.0,
            "mb_s": count * size / cpu / 1e6 if cpu else 0.0}


def writer_table(runs: list[dict]) -> str:
    rows = [["size", "messages", "compression", "CPU µs/msg", "msg/s", "MB/s"]]
    rows += [[str(r["size"]), str(r["count"]), r["compression"], f"{r['us_per_msg']:.1f}", f"{r['msg_s']:.0f}",
              f"{r['mb_s']:.0f}"] for r in runs]
    return text_table(rows)


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def run_record(spec: str, opts: argparse.Namespace) -> dict:
    """One `run --record` of a paced sender; what the file holds, read back with `bag info`."""
    from dora_zenoh.record.info import bag_info

    size, rate, seconds, *rest = spec.split(":")
    compression = rest[0] if rest else "zstd"
    with tempfile.TemporaryDirectory(prefix="dz-bench-rec-") as tmp:
        work = Path(tmp)
        result, rec = work / "tx.json", work / "rec.mcap"
        nodes = [node("tx", "record_tx.py", outputs=["data"],
                      env={"RESULT_FILE": result, "SIZE": size, "RATE": rate, "SECONDS": seconds})]
        (work / "dataflow.yml").write_text(yaml.safe_dump({"nodes": nodes}, sort_keys=False))
        cmd = opts.dora_zenoh_cmd.split() + ["run", str(work / "dataflow.yml"), "--endpoint",
                                             f"tcp/127.0.0.1:{free_port()}", "--quiet", "--record", str(rec), "--record-compression", compression,
                                             "--log-dir", str(work / "logs")]
        proc = spawn(cmd, work, dict(os.environ), work / "runner.log")
        try:
            code = proc.wait(opts.timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish within {opts.timeout:.0f} s; log tail:\n{tail(work / 'runner.log')}"}
        finally:
            end_tree(proc)
        if code != 0 or not result.exists():
            return {"error": f"exited {code}; log tail:\n{tail(work / 'runner.log')}"}
        tx = json.loads(result.read_text())
        info = bag_info(rec)
        stats = recorder_stats(rec)
        topic = info.topics[0] if info.topics else None
        got = topic.count if topic else 0
        out = {"size": int(size), "target_rate": float(rate), "sent": tx["sent"],
               "send_rate": tx["sent"] / tx["seconds"], "recorded": got,
               "gaps": topic.gaps + topic.missing_end if topic else tx["sent"],
               "dropped": topic.dropped if topic else 0,
               "file_bytes": info.size, "recorded_rate": (got - 1) / info.duration if info.duration else 0.0}
        out["send_mb_s"] = out["send_rate"] * int(size) / 1e6
        out["lost_before"] = max(0, out["gaps"] - out["dropped"])  # a recorder drop leaves a seq gap too
        out.update(stats)
        out.update(replay_timing(rec, opts))
        out.update(replay_timing(rec, opts, realtime=True))
        if got + out["dropped"] != tx["sent"] or out["gaps"] > out["dropped"]:  # a drop is a gap too
            out["error"] = (f"{tx['sent']} sent, {got} recorded, {out['dropped']} dropped (counted), "
                            f"{out['gaps']} gaps")
        return out


def recorder_stats(rec: Path) -> dict:
    """The recorder's own figures, from the file's metadata (``dora-zenoh.recorder``)."""
    from dora_zenoh.record import mapping, reader

    raw = reader.metadata(rec).get(mapping.META_STATS, {})
    try:
        st = {k: float(v) for k, v in raw.items()}
    except ValueError:
        return {}
    n, secs = st.get("messages", 0), st.get("seconds", 0)
    if not n:
        return {}
    per = {stage: st.get(f"{stage}_cpu_s", 0.0) / n * 1e6 for stage in ("process", "receive", "write")}
    write_s = st.get("write_cpu_s", 0.0)
    return {"rec_cpu_s": st.get("process_cpu_s", 0.0),
            "rec_cpu_pct": 100 * st.get("process_cpu_s", 0.0) / secs if secs > 0 else 0.0,
            "rec_us_per_msg": per["process"], "rec_receive_us": per["receive"], "rec_write_us": per["write"],
            "rec_zenoh_us": max(0.0, per["process"] - per["receive"] - per["write"]),
            "writer_msg_s": n / write_s if write_s else 0.0,
            "writer_mb_s": st.get("payload_bytes", 0.0) / write_s / 1e6 if write_s else 0.0,
            "buffer_peak_mb": st.get("peak_buffer_bytes", 0.0) / 1e6}


def replay_timing(rec: Path, opts: argparse.Namespace, realtime: bool = False) -> dict:
    """`replay` of the recording onto its keys (no subscriber): how late each put returned, µs;
    ``realtime``: with `--realtime` (SCHED_FIFO; keys ``replay_rt_*``, or why it was refused)."""
    import re

    pre = "replay_rt" if realtime else "replay"
    cmd = opts.dora_zenoh_cmd.split() + ["replay", str(rec), "--endpoint", f"tcp/127.0.0.1:{free_port()}",
                                         "--stats"] + (["--realtime"] if realtime else [])
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.timeout)
    except subprocess.TimeoutExpired:
        return {f"{pre}_error": "replay timed out"}
    found = re.search(r"p50 (\d+) µs, p99 (\d+) µs, max (\d+) µs", res.stderr)
    if res.returncode != 0 or not found:
        return {f"{pre}_error": res.stderr[-500:]}
    if realtime and "SCHED_FIFO refused" in res.stderr:
        return {f"{pre}_error": "SCHED_FIFO refused (run as root or with CAP_SYS_NICE)"}
    out = dict(zip((f"{pre}_p50_us", f"{pre}_p99_us", f"{pre}_max_us"), map(int, found.groups()), strict=True))
    work = re.search(r"([\d.]+) µs of work per message", res.stderr)
    if work:
        out[f"{pre}_work_us"] = float(work.group(1))
    return out


def record_table(runs: dict[str, list[dict]]) -> str:
    head = ["run", "sent", "msg/s", "MB/s", "in file", "dropped", "lost before", "rec CPU %, µs/msg",
            "zenoh/recv/write µs", "writer msg/s, MB/s", "buf peak", "replay p50/p99/max µs",
            "--realtime p50/p99/max µs"]
    rows = [head]
    for spec, rs in runs.items():
        for r in rs:
            if "send_rate" not in r:
                rows.append([spec, "failed"] + [""] * (len(head) - 2))
                continue
            cpu = (f"{r['rec_cpu_pct']:.0f} %, {r['rec_us_per_msg']:.1f}" if "rec_cpu_pct" in r else "-")
            stages = ("/".join(f"{r[k]:.1f}" for k in ("rec_zenoh_us", "rec_receive_us", "rec_write_us"))
                      if "rec_write_us" in r else "-")
            writer = f"{r['writer_msg_s']:.0f}, {r['writer_mb_s']:.0f}" if "writer_msg_s" in r else "-"
            peak = f"{r['buffer_peak_mb']:.1f} MB" if "buffer_peak_mb" in r else "-"
            rows.append([spec, str(r["sent"]), f"{r['send_rate']:.0f}", f"{r['send_mb_s']:.0f}", str(r["recorded"]),
                         str(r["dropped"]), str(r["lost_before"]), cpu, stages, writer, peak,
                         "/".join(str(r.get(k, "-")) for k in ("replay_p50_us", "replay_p99_us", "replay_max_us")),
                         "/".join(str(r.get(k, "-")) for k in ("replay_rt_p50_us", "replay_rt_p99_us",
                                                              "replay_rt_max_us"))])
    return text_table(rows)


def main(argv: list[str] | None = None) -> int:
    """Run, print, write JSON (and PNG); exit 1 if a dora-zenoh run failed or lost a message."""
    opts = parse_args(argv)
    exit_on_signals()
    if opts.cpus:
        os.sched_setaffinity(0, opts.cpus)  # every process started from here inherits it
    try:  # held for the whole run, released below (the kernel withdraws it too if this process dies)
        pm_qos = CpuLatencyRequest(opts.cpu_latency_us) if opts.cpu_latency_us is not None else None
    except CpuLatencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    machine = machine_info()
    report: dict[str, Any] = {"machine": machine, "errors": [],
                              "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()}}
    try:
        runtimes = runtimes_for(opts, machine)
        report["runtimes"] = {n: ("available" if isinstance(r, Runtime) else f"unavailable: {r}")
                              for n, r in runtimes.items()}
        tables = run_cases(opts, runtimes, report)
    finally:
        end_all()
        if pm_qos is not None:
            pm_qos.release()
    machine["loadavg_end"] = list(os.getloadavg())
    print()
    print("\n\n".join(tables))
    print()
    print(machine_line(machine))
    for err in report["errors"]:
        print(f"\nFAILED {err}")
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(report, indent=2))
    print(f"\nJSON written to {opts.json}")
    if opts.png:
        if "latency" in report:
            draw_png(opts.png, report["latency"]["summary"], list(report["latency"]["runs"]))
        else:
            print("--png: the chart shows latency; add it to --cases")
    return 1 if dz_failed(report) else 0


def dz_failed(report: dict) -> bool:
    """Whether dora-zenoh itself failed a run or lost a message (other runtimes' failures are reported only)."""
    if any(e.split(" ")[0] in CASES and f" {DZ} repeat" in e for e in report["errors"]):
        return True
    if any(e.startswith("machines ") for e in report["errors"]):
        return True
    if any(per[DZ]["lost"] for per in report.get("scale", {}).get("summary", {}).values()):
        return True
    return any(per[DZ]["lost"] for per in report.get("throughput", {}).get("summary", {}).values())


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process this benchmark started has been ended", file=sys.stderr)
        sys.exit(130)
