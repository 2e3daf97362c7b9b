"""Running one dataflow: spawn its nodes, stream their logs, supervise, stop, report.

`DataflowRun` is the embedded supervisor behind ``dora-zenoh run``. It hosts the
Zenoh hub the nodes connect to, but no user data passes through it: after
gossip, nodes talk to each other directly. It only spawns processes (with
``subprocess``, never ``fork``: this process has a Zenoh session open), watches
them, and announces facts to the nodes through liveliness tokens: "I supervise
this dataflow", "node n has exited", "stop".
"""
from __future__ import annotations

import json
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import zenoh

from dora_zenoh import keys, wire, zconfig
from dora_zenoh.descriptor import Descriptor, ResolvedNode
from dora_zenoh.nodeconfig import node_config
from dora_zenoh.reaper import terminate_trees

SHIM_DIR = str(Path(__file__).resolve().parent / "_shim")
STDERR_TAIL = 15


@dataclass
class RunOptions:
    """How to run a dataflow (the flags of ``dora-zenoh run``)."""

    name: str | None = None
    endpoint: str | None = None
    stop_after: float | None = None
    grace: float = 10.0
    log_dir: Path | None = None
    echo: bool = True
    out: IO[str] | None = None  # where node lines are echoed (default: sys.stdout/sys.stderr)


@dataclass
class NodeResult:
    """How one node ended."""

    id: str
    returncode: int | None
    status: str  # "succeeded" | "failed" | "stopped" | "killed"
    detail: str
    ended_at: float
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "stopped")


@dataclass
class RunResult:
    """The outcome of a run: every node's result and where the logs are."""

    dataflow: str
    run_id: str
    log_dir: Path
    nodes: list[NodeResult]

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.nodes)

    @property
    def first_failure(self) -> NodeResult | None:
        failed = sorted((n for n in self.nodes if not n.ok), key=lambda n: n.ended_at)
        return failed[0] if failed else None

    def summary(self) -> str:
        first = self.first_failure
        if first is None:
            return f"dataflow '{self.dataflow}' finished: {len(self.nodes)} node(s) succeeded (logs: {self.log_dir})"
        others = [n.id for n in self.nodes if not n.ok and n is not first]
        lines = [f"dataflow '{self.dataflow}' failed: node '{first.id}' {first.detail}"]
        if others:
            lines[0] += f" (then also: {', '.join(others)})"
        if first.stderr_tail:
            lines.append(f"last lines of '{first.id}' stderr:")
            lines.extend(f"    {line}" for line in first.stderr_tail)
        lines.append(f"logs: {self.log_dir}")
        return "\n".join(lines)


class _Proc:
    """A spawned node process and what we know of it."""

    def __init__(self, node: ResolvedNode, popen: subprocess.Popen, log: IO[str]) -> None:
        self.node = node
        self.popen = popen
        self.create_time = psutil.Process(popen.pid).create_time()
        self.log = log
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.pumps: list[threading.Thread] = []
        self.stop_action: str | None = None  # "terminated" (asked to stop) | "killed" (ignored STOP)
        self.exited_token: Any = None


def sanitize_name(name: str) -> str:
    """A dataflow name usable as one Zenoh key chunk."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return clean or "dataflow"


def new_run_id() -> str:
    """Sortable and unique enough: ``20261125-004512-3fa2``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def parse_duration(text: str) -> float:
    """``10``, ``10s``, ``500ms``, ``2m``, ``1h`` -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise ValueError(f"'{text}' is not a duration: use e.g. 10s, 500ms, 2m or 1h")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


class DataflowRun:
    """One running dataflow. ``start()``, then ``wait()`` (or ``stop()`` from elsewhere)."""

    def __init__(self, desc: Descriptor, options: RunOptions | None = None) -> None:
        self.desc = desc
        self.options = options or RunOptions()
        self.run_id = new_run_id()
        self.dataflow = sanitize_name(self.options.name or desc.name or desc.path.stem)
        self.endpoint = self.options.endpoint or zconfig.default_endpoint()
        self.session: zenoh.Session | None = None
        self.procs: dict[str, _Proc] = {}
        self.results: dict[str, NodeResult] = {}
        self.alive: set[str] = set()
        self._ended_at: dict[str, float] = {}
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._print_lock = threading.Lock()
        self._stopping_at: float | None = None
        self._tokens: list[Any] = []
        self._reaper: subprocess.Popen | None = None
        self.log_dir = self._make_log_dir()

    # -- start -----------------------------------------------------------------------
    def _make_log_dir(self) -> Path:
        base = self.options.log_dir or self.desc.base_dir / "out"
        path = Path(base) / self.run_id
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
            path = state / "dora-zenoh" / "out" / self.run_id
            path.mkdir(parents=True, exist_ok=True)
        return path

    def _open_hub(self) -> None:
        """Listen on the endpoint; if it is taken (another run, a coordinator), join that
        network and listen on a free port of our own instead."""
        joined = zconfig.tcp_port_in_use(self.endpoint)
        if joined:
            own = zconfig.free_tcp_endpoint(self.endpoint.split("/", 1)[1].rsplit(":", 1)[0])
            self.session = zenoh.open(zconfig.peer_config([self.endpoint], [own]))
            self.node_endpoint = own
            zconfig.wait_for_peers(self.session, 3.0)
            self._unique_name()
        else:
            self.session = zenoh.open(zconfig.peer_config([], [self.endpoint]))
            self.node_endpoint = self.endpoint

    def _unique_name(self) -> None:
        """On a shared network, two dataflows may not have the same name: suffix ours."""
        base, n = self.dataflow, 1
        while True:
            token = keys.runner_token(self.desc.prefix, self.dataflow)
            if not list(self.session.liveliness().get(token, timeout=0.5)):
                return
            n += 1
            self.dataflow = f"{base}-{n}"

    def start(self) -> None:
        """Open the hub, announce the dataflow, and spawn every node. Nothing is left
        running if this raises."""
        try:
            self._open_hub()
            prefix, session = self.desc.prefix, self.session
            self._tokens.append(session.liveliness().declare_token(keys.runner_token(prefix, self.dataflow)))
            live_nodes = keys.live_root(prefix, self.dataflow) + "/node/"
            session.liveliness().declare_subscriber(
                live_nodes + "*", zenoh.handlers.Callback(self._on_live, indirect=False), history=True)
            self._live_nodes = live_nodes
            # A node's end is dated by its end-of-stream notice when it sends one: a node
            # that fails sends it before its downstream can react, so the first failure
            # in time is the cause, not one of its victims.
            session.declare_subscriber(keys.eos_key(prefix, self.dataflow, "*"),
                                       zenoh.handlers.Callback(self._on_eos, indirect=False))
            dynamic = [n for n in self.desc.nodes if n.kind == "dynamic"]
            if dynamic:
                session.declare_queryable(keys.config_key(prefix, self.dataflow, "*"),
                                          zenoh.handlers.Callback(self._on_config_query, indirect=False))
            self._reaper = subprocess.Popen([sys.executable, "-m", "dora_zenoh.reaper"],
                                            stdin=subprocess.PIPE, text=True, env=self._base_env())
            for node in self.desc.nodes:
                if node.kind != "dynamic":
                    self._spawn(node)
        except BaseException:
            self.kill()
            self._close_session()
            raise
        self._started_at = time.monotonic()

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        path = [SHIM_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env["PYTHONPATH"] = os.pathsep.join(path)
        env["PYTHONUNBUFFERED"] = "1"
        env[zconfig.ENDPOINT_ENV] = self.node_endpoint if self.session else self.endpoint
        return env

    def command_for(self, node: ResolvedNode) -> list[str]:
        """The argv of a node process."""
        if node.kind == "runtime":
            return [sys.executable, "-u", "-m", "dora_zenoh.runtime"]
        assert node.command, node.id
        return list(node.command)

    def _spawn(self, node: ResolvedNode) -> None:
        env = self._base_env()
        env.update(node.env)
        cfg = node_config(self.desc, self.dataflow, node, self.node_endpoint)
        env["DORA_ZENOH_NODE_CONFIG"] = json.dumps(cfg)
        env["DORA_NODE_ID"] = node.id
        log = open(self.log_dir / f"log_{node.id}.txt", "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        try:
            popen = subprocess.Popen(self.command_for(node), cwd=self.desc.base_dir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            log.close()
            raise RuntimeError(f"node '{node.id}': could not start {self.command_for(node)[0]}: {exc}") from exc
        proc = _Proc(node, popen, log)
        self.procs[node.id] = proc
        assert self._reaper and self._reaper.stdin
        self._reaper.stdin.write(f"{popen.pid} {proc.create_time}\n")
        self._reaper.stdin.flush()
        stdout_pub = None
        if node.send_stdout_as:
            stdout_pub = self.session.declare_publisher(
                keys.data_key(self.desc.prefix, self.dataflow, f"{node.id}/{node.send_stdout_as}"),
                encoding=wire.ENC_TEXT, congestion_control=zenoh.CongestionControl.BLOCK)
        proc.pumps = [
            threading.Thread(target=self._pump, args=(proc, popen.stdout, False, stdout_pub), daemon=True),
            threading.Thread(target=self._pump, args=(proc, popen.stderr, True, None), daemon=True),
        ]
        for t in proc.pumps:
            t.start()
        threading.Thread(target=self._waiter, args=(proc,), daemon=True).start()

    # -- while running -----------------------------------------------------------------
    def _pump(self, proc: _Proc, stream: IO[bytes], is_stderr: bool, publisher: Any) -> None:
        """Echo a node's output with its id, write its log, publish stdout if asked."""
        node_id = proc.node.id
        seq = 0
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if is_stderr:
                proc.stderr_tail.append(line)
            with self._print_lock:
                proc.log.write(line + "\n")
                if self.options.echo:
                    out = self.options.out or (sys.stderr if is_stderr else sys.stdout)
                    print(f"[{node_id}] {line}", file=out, flush=True)
            if publisher is not None:
                publisher.put(line.encode(), attachment=wire.attachment(seq, time.time_ns(), None))
                seq += 1
        stream.close()
        if publisher is not None:
            notice = {"node": node_id, "outputs": {proc.node.send_stdout_as: seq}}
            self.session.put(keys.eos_key(self.desc.prefix, self.dataflow, node_id), json.dumps(notice).encode(),
                             congestion_control=zenoh.CongestionControl.BLOCK)

    def _waiter(self, proc: _Proc) -> None:
        proc.popen.wait()
        for t in proc.pumps:
            t.join(5)
        self._events.put(("exit", proc))

    def _on_live(self, sample: zenoh.Sample) -> None:
        name = str(sample.key_expr)[len(self._live_nodes):]
        if sample.kind == zenoh.SampleKind.PUT:
            self.alive.add(name)
        else:
            self.alive.discard(name)

    def _on_eos(self, sample: zenoh.Sample) -> None:
        node = str(sample.key_expr).rsplit("/", 1)[1]
        self._ended_at.setdefault(node, time.monotonic())

    def _on_config_query(self, query: zenoh.Query) -> None:
        for node in self.desc.nodes:
            if node.kind != "dynamic":
                continue
            key = keys.config_key(self.desc.prefix, self.dataflow, node.id)
            if zenoh.KeyExpr(key).intersects(query.key_expr):
                cfg = node_config(self.desc, self.dataflow, node, self.node_endpoint)
                query.reply(key, json.dumps(cfg).encode())

    def _record_exit(self, proc: _Proc) -> None:
        code = proc.popen.returncode
        node_id = proc.node.id
        if proc.stop_action == "killed":
            status, detail = "killed", f"did not stop within the {self.options.grace:g} s grace period and was killed"
        elif code == 0:
            status, detail = "succeeded", "exited with code 0"
        elif proc.stop_action == "terminated" and code is not None and code < 0:
            status, detail = "stopped", "was stopped (it does not use the node API, so it got SIGTERM)"
        elif code is not None and code < 0:
            status, detail = "failed", f"was killed by signal {_signal_name(-code)}"
        else:
            status, detail = "failed", f"exited with code {code}"
        ended_at = min(self._ended_at.get(node_id, time.monotonic()), time.monotonic())
        self.results[node_id] = NodeResult(node_id, code, status, detail, ended_at, list(proc.stderr_tail))
        proc.log.write(f"[dora-zenoh] node '{node_id}' {detail}\n")
        proc.log.close()
        if self.session is not None:
            proc.exited_token = self.session.liveliness().declare_token(
                keys.exited_token(self.desc.prefix, self.dataflow, node_id))
        if status == "failed" and self.options.echo:
            with self._print_lock:
                print(f"[dora-zenoh] node '{node_id}' {detail}", file=sys.stderr, flush=True)

    # -- stopping --------------------------------------------------------------------
    def stop(self) -> None:
        """Ask every node to stop (STOP event); the grace period starts now. Thread-safe."""
        self._events.put(("stop", None))

    def kill(self) -> None:
        """Kill every node's process tree now. Thread-safe."""
        roots = []
        for p in self.procs.values():
            if p.popen.poll() is None:
                p.stop_action = p.stop_action or "killed"
                roots.append((p.popen.pid, p.create_time))
        terminate_trees(roots, grace=0.0)

    def _begin_stop(self) -> None:
        if self._stopping_at is not None:
            return
        self._stopping_at = time.monotonic()
        self._tokens.append(self.session.liveliness().declare_token(
            keys.stop_token(self.desc.prefix, self.dataflow)))
        threading.Thread(target=self._stop_silent_nodes, daemon=True).start()

    def _stop_silent_nodes(self, settle: float = 0.5) -> None:
        """A node that never joined Zenoh cannot hear STOP: SIGTERM is its STOP.

        Waits ``settle`` seconds first: a node that has only just started may not have
        announced itself yet (it will see the stop token when it does).
        """
        time.sleep(settle)
        roots = []
        for p in self.procs.values():
            if p.node.id not in self.alive and p.popen.poll() is None and p.stop_action is None:
                p.stop_action = "terminated"
                roots.append((p.popen.pid, p.create_time))
        if roots:
            terminate_trees(roots, 3.0)

    def _grace_expired(self) -> None:
        roots = []
        for p in self.procs.values():
            if p.popen.poll() is None and p.stop_action is None:
                p.stop_action = "killed"
                roots.append((p.popen.pid, p.create_time))
        if roots:
            threading.Thread(target=terminate_trees, args=(roots, 3.0), daemon=True).start()

    def wait(self) -> RunResult:
        """Supervise until every spawned node has exited, then clean up and report."""
        stop_after = (self._started_at + self.options.stop_after) if self.options.stop_after else None
        grace_done = False
        while len(self.results) < len(self.procs):
            deadlines = [d for d in (stop_after if self._stopping_at is None else None,
                                     None if grace_done or self._stopping_at is None
                                     else self._stopping_at + self.options.grace) if d is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            try:
                kind, proc = self._events.get(timeout=timeout)
            except queue.Empty:
                if self._stopping_at is None:
                    self._begin_stop()
                else:
                    grace_done = True
                    self._grace_expired()
                continue
            if kind == "exit":
                self._record_exit(proc)
            elif kind == "stop":
                self._begin_stop()
        self._finish()
        return RunResult(self.dataflow, self.run_id, self.log_dir,
                         [self.results[n] for n in self.procs])

    def _finish(self) -> None:
        if self._reaper is not None and self._reaper.stdin:
            self._reaper.stdin.close()
            try:
                self._reaper.wait(10)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
        self._close_session()

    def _close_session(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.close()


def _signal_name(num: int) -> str:
    import signal

    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)
