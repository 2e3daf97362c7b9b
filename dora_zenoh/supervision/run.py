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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import zenoh

from dora_zenoh.console import warn
from dora_zenoh.descriptor.load import Descriptor, ResolvedNode
from dora_zenoh.errors import LogDirError
from dora_zenoh.node import supervisor
from dora_zenoh.supervision.logfile import LogLimits, NodeLog
from dora_zenoh.supervision.reaper import terminate_trees
from dora_zenoh.supervision.topology import LINKS_KEY, LinkPlan
from dora_zenoh.tuning.affinity import inherited_by_children
from dora_zenoh.tuning.cpulatency import CpuLatencyRequest
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys, stderr_tags, zconfig
from dora_zenoh.wire.contract import node_config, readers_by_output

SHIM_DIR = str(Path(__file__).resolve().parents[1] / "_shim")
STDERR_TAIL = 15
RESTART_DELAY = 0.5      # seconds before the first restart when the YAML gives no restart_delay
RESTART_DELAY_MAX = 30.0  # the delay doubles with each restart of a node, up to this


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
    # Called with (node id, line, is_stderr, display) for every line written to a node's log,
    # under the log lock (so a reader of the log file and a follower of this hook agree);
    # ``display`` is what `run` prints for it, or None for a line `run` only logs.
    on_line: Callable[[str, str, bool, str | None], None] | None = None
    hot_reload: bool = False  # operator runtimes reload changed operator files in place
    cpu_latency_us: int | None = None  # hold a PM QoS request while the dataflow runs (cpulatency)
    log_limits: LogLimits | None = None  # rotation of node logs (logfile.py; default: from the environment)


@dataclass
class NodeResult:
    """How one node ended."""

    id: str
    returncode: int | None
    status: str  # "succeeded" | "failed" | "stopped" | "killed"
    detail: str
    ended_at: float  # wall-clock seconds: when the node's end began (see DataflowRun._ended_at)
    stderr_tail: list[str] = field(default_factory=list)
    restarts: int = 0

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

    def __init__(self, node: ResolvedNode, popen: subprocess.Popen, log: NodeLog) -> None:
        self.node = node
        self.popen = popen
        self.create_time = psutil.Process(popen.pid).create_time()
        self.log = log
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.pumps: list[threading.Thread] = []
        # "terminated" (asked to stop) | "killed" (ignored STOP) | "forced" (killed on request)
        self.stop_action: str | None = None
        self.exited_token: Any = None
        self.supervision_lost: str | None = None  # the node's LOST_TAG line, if it stopped for that
        self.close_failed: str | None = None  # its CLOSE_FAILED_TAG line: Zenoh did not close cleanly


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
        # When each node's end began, in wall-clock seconds (one clock for every process on
        # the machine): its own stamp in its end-of-stream notice, else when its token went
        # or its process exited. Our receive times alone can't order two nodes' ends: the
        # notices travel different links, which a loaded machine serves out of order.
        self._ended_at: dict[str, float] = {}
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._print_lock = threading.Lock()
        self._stopping_at: float | None = None
        self._tokens: list[Any] = []
        self._reaper: subprocess.Popen | None = None
        self._links: LinkPlan | None = None
        self._identity = supervisor.identity()
        self._killed = False
        self._cpu_latency: CpuLatencyRequest | None = None
        # Supervision: restarts done per node, nodes waiting out their restart delay
        # (with how their last process ended), lines written per node log, and the
        # messages each node's earlier processes sent (from their end-of-stream notices).
        self.restarts: dict[str, int] = {}
        self.pending_restart: dict[str, tuple[_Proc, str, str]] = {}
        self.line_counts: dict[str, int] = {}
        self.sent_before: dict[str, dict[str, int]] = {}
        self.log_dir = self._make_log_dir()
        self._log_limits = self.options.log_limits or LogLimits.from_env()
        self._log_warned = False

    def _log_write_failed(self, message: str) -> None:
        """A node log could not be written (called under the log lock): say so once per run."""
        if not self._log_warned:
            self._log_warned = True
            warn(f"{message} (this warning is not repeated for other nodes; the count comes at the end)")

    def log_lines_dropped(self) -> dict[str, int]:
        """Per node: lines its log could not take (full or read-only disk)."""
        return {n: p.log.dropped for n, p in self.procs.items() if p.log.dropped}

    # -- start -----------------------------------------------------------------------
    def _make_log_dir(self) -> Path:
        base = self.options.log_dir or self.desc.base_dir / "out"
        path = Path(base) / self.run_id
        try:
            path.mkdir(parents=True, exist_ok=True)
            return path
        except OSError as exc:
            first = f"{path.parent} ({exc.strerror})"
        state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
        path = state / "dora-zenoh" / "out" / self.run_id
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogDirError(f"cannot create a log directory for the run in {first} nor in {path.parent} "
                              f"({exc.strerror}); pass --log-dir with a directory you can write to") from None
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
            if self.options.cpu_latency_us is not None:  # first: if it fails, nothing has started
                self._cpu_latency = CpuLatencyRequest(self.options.cpu_latency_us)
            self._open_hub()
            # scale: each node links to the hub and to the nodes it reads from (topology.py)
            self._links = None if os.environ.get(zconfig.LISTEN_ENV) else LinkPlan(self.desc, self.node_endpoint)
            prefix, session = self.desc.prefix, self.session
            self._tokens.append(session.liveliness().declare_token(keys.runner_token(prefix, self.dataflow)))
            live_nodes = keys.live_root(prefix, self.dataflow) + "/node/"
            session.liveliness().declare_subscriber(
                live_nodes + "*", zenoh.handlers.Callback(self._on_live, indirect=False), history=True)
            self._live_nodes = live_nodes
            # A node may ask for the whole dataflow to stop (an operator's STOP_ALL) by
            # declaring the stop token itself: treat that like Ctrl-C.
            session.liveliness().declare_subscriber(
                keys.stop_token(prefix, self.dataflow),
                zenoh.handlers.Callback(self._on_stop_token, indirect=False))
            # A node's end is dated by its end-of-stream notice when it sends one: a node
            # that fails sends it before its downstream can react, so the first failure
            # in time is the cause, not one of its victims.
            session.declare_subscriber(keys.eos_key(prefix, self.dataflow, "*"),
                                       zenoh.handlers.Callback(self._on_eos, indirect=False))
            dynamic = [n for n in self.desc.nodes if n.kind == "dynamic"]
            if dynamic:
                session.declare_queryable(keys.config_key(prefix, self.dataflow, "*"),
                                          zenoh.handlers.Callback(self._on_config_query, indirect=False))
            self._reaper = subprocess.Popen([sys.executable, "-m", "dora_zenoh.supervision.reaper"],
                                            stdin=subprocess.PIPE, text=True, env=self._base_env())
            for node in self.desc.nodes:
                if node.kind != "dynamic":
                    self._spawn(node)
        except BaseException:
            self.kill()
            self._close_session()
            self._release_cpu_latency()
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
            return [sys.executable, "-u", "-m", "dora_zenoh.operators.runtime"]
        assert node.command, node.id
        return list(node.command)

    def _spawn(self, node: ResolvedNode, restart: bool = False) -> None:
        env = self._base_env()
        env.update(node.env)
        cfg = node_config(self.desc, self.dataflow, node, self.node_endpoint)
        # Started with the dataflow, behind the start barrier: it hears every message its
        # sources send, from sequence number 0 (a restarted node joins them midway).
        cfg["fresh_start"] = not restart
        cfg["runner"] = self._identity  # a paused runner is not a dead one (node/supervisor.py)
        links = self._links.links(node.id) if self._links is not None else None
        if links:  # scale: this node's own listener and upstream links (topology.py)
            cfg[LINKS_KEY] = links
        zconfig.tune_node_env(env, any(i["queue_policy"] == "block" for i in cfg["inputs"].values()))
        env["DORA_ZENOH_NODE_CONFIG"] = json.dumps(cfg)
        env["DORA_NODE_ID"] = node.id
        if self.options.hot_reload and node.kind == "runtime":
            env["DORA_ZENOH_HOT_RELOAD"] = "1"
        # logs: rotated, and a full/read-only disk drops lines instead of blocking the node (logfile.py)
        log = NodeLog(self.log_dir / f"log_{node.id}.txt", append=restart, limits=self._log_limits,
                      on_drop=self._log_write_failed)
        try:
            with inherited_by_children(node.cpu_affinity):  # the node's every thread, from its start
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
        if node.send_stdout_as and node.kind != "runtime":  # a runtime publishes its operators' lines
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
                if line.startswith(stderr_tags.LOST_TAG):  # see _record_exit
                    proc.supervision_lost = line[len(stderr_tags.LOST_TAG):].strip()
                elif line.startswith(stderr_tags.CLOSE_FAILED_TAG):
                    proc.close_failed = line[len(stderr_tags.CLOSE_FAILED_TAG):].strip()
            self._log_line(proc, line, is_stderr, f"[{node_id}] {line}")
            if publisher is not None:
                if seq == 0:
                    self._wait_for_readers(node_id, proc.node.send_stdout_as)
                publisher.put(line.encode(), attachment=wire.attachment(seq, time.time_ns(), None))
                seq += 1
        stream.close()
        if publisher is not None:
            notice = {"node": node_id, "outputs": {proc.node.send_stdout_as: seq}}
            self.session.put(keys.eos_key(self.desc.prefix, self.dataflow, node_id), json.dumps(notice).encode(),
                             congestion_control=zenoh.CongestionControl.BLOCK)

    def _wait_for_readers(self, node_id: str, output: str, timeout: float = 30.0) -> None:
        """Before the first stdout line we publish for ``node_id`` (as ``output``): wait
        (bounded) until every node that reads it is subscribed, as this process sees it.

        The node's own start barrier does not cover this publisher: the node may see a
        reader's token over their direct link before the reader's subscription reaches
        us, and a line published then would be lost (seen under CPU load).
        """
        readers = readers_by_output(self.desc, node_id).get(output, [])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._stopping_at is None:
            waiting = [r for r in readers if r not in self.alive
                       and not (r in self.procs and self.procs[r].popen.poll() is not None)]
            if not waiting:
                return
            time.sleep(0.005)

    def _log_line(self, proc: _Proc, line: str, is_stderr: bool, display: str | None) -> None:
        """Write one line to a node's log, print ``display`` (if echoing), tell ``on_line``."""
        node_id = proc.node.id
        with self._print_lock:
            proc.log.write(line)
            self.line_counts[node_id] = self.line_counts.get(node_id, 0) + 1
            if display is not None and self.options.echo:
                out = self.options.out or (sys.stderr if is_stderr else sys.stdout)
                print(display, file=out, flush=True)
            if self.options.on_line is not None:
                try:
                    self.options.on_line(node_id, line, is_stderr, display)
                except Exception:  # a log follower must never break supervision
                    pass

    def read_log(self, node_id: str, tail: int | None = None) -> tuple[list[str], int]:
        """The last ``tail`` lines of a node's log (all if None) and how many it has in all.

        Read under the log lock, so the count matches the lines ``on_line`` has seen.
        """
        proc = self.procs.get(node_id)
        files = proc.log.files() if proc is not None else [self.log_dir / f"log_{node_id}.txt"]
        with self._print_lock:
            lines = []
            for path in files:  # rotated files first, oldest first
                try:
                    lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError:
                    pass
            count = self.line_counts.get(node_id, 0)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return lines, count

    def _waiter(self, proc: _Proc) -> None:
        proc.popen.wait()
        for t in proc.pumps:
            t.join(5)
        self._events.put(("exit", proc))

    def _on_live(self, sample: zenoh.Sample) -> None:
        name = str(sample.key_expr)[len(self._live_nodes):]
        if sample.kind == zenoh.SampleKind.PUT:
            self.alive.add(name)
            proc = self.procs.get(name)
            if proc is not None and proc.popen.poll() is None:
                self._ended_at.pop(name, None)  # back after a lost link (e.g. we were paused): not ended
        else:
            self.alive.discard(name)
            self._ended_at.setdefault(name, time.time())

    def _on_stop_token(self, sample: zenoh.Sample) -> None:
        if sample.kind == zenoh.SampleKind.PUT:
            self.stop()

    def _on_eos(self, sample: zenoh.Sample) -> None:
        node = str(sample.key_expr).rsplit("/", 1)[1]
        try:
            notice = json.loads(sample.payload.to_bytes())
        except ValueError:
            notice = {}
        if isinstance(notice, dict) and notice.get("partial"):
            return  # one operator of a runtime stopped; the node goes on (its final notice repeats these)
        try:
            ended = float(notice.get("ended", time.time()))
        except (TypeError, ValueError, AttributeError):
            ended = time.time()
        self._ended_at.setdefault(node, ended)
        try:
            outputs = notice.get("outputs", {})
            sent = self.sent_before.setdefault(node, {})
            for out, count in outputs.items():
                sent[out] = sent.get(out, 0) + int(count)
        except (ValueError, AttributeError, TypeError):
            pass

    def _on_config_query(self, query: zenoh.Query) -> None:
        for node in self.desc.nodes:
            if node.kind != "dynamic":
                continue
            key = keys.config_key(self.desc.prefix, self.dataflow, node.id)
            if zenoh.KeyExpr(key).intersects(query.key_expr):
                cfg = node_config(self.desc, self.dataflow, node, self.node_endpoint)
                cfg["runner"] = self._identity
                query.reply(key, json.dumps(cfg).encode())

    def _record_exit(self, proc: _Proc) -> None:
        code = proc.popen.returncode
        node_id = proc.node.id
        if proc.stop_action == "killed":
            status, detail = "killed", f"did not stop within the {self.options.grace:g} s grace period and was killed"
        elif proc.stop_action == "forced":
            status, detail = "killed", "was killed on request (--force)"
        elif code == 0:
            status, detail = "succeeded", "exited with code 0"
        elif proc.stop_action == "terminated" and code is not None and code < 0:
            status, detail = "stopped", "was stopped (it does not use the node API, so it got SIGTERM)"
        elif code is not None and code < 0:
            status, detail = "failed", f"was killed by signal {_signal_name(-code)}"
        else:
            status, detail = "failed", f"exited with code {code}"
        if proc.supervision_lost and status in ("succeeded", "stopped"):
            # It ended because it could not reach us: whatever its code, the run did not go as asked.
            status, detail = "failed", f"was stopped because it lost its supervisor ({proc.supervision_lost})"
        elif proc.close_failed and status in ("succeeded", "stopped"):
            status, detail = "failed", f"did not close cleanly ({proc.close_failed})"
        if self._will_restart(proc.node, status):
            done = self.restarts.get(node_id, 0)
            delay = min(RESTART_DELAY_MAX, (proc.node.restart_delay if proc.node.restart_delay is not None
                                            else RESTART_DELAY) * 2 ** done)
            self.restarts[node_id] = done + 1
            limit = f" of {proc.node.max_restarts}" if proc.node.max_restarts is not None else ""
            msg = (f"[dora-zenoh] node '{node_id}' {detail}; restarting in {delay:g} s "
                   f"(restart {done + 1}{limit}, restart_policy: {proc.node.restart_policy})")
            self._log_line(proc, msg, True, msg)
            proc.log.close()
            # No exited/<node> token: downstream keeps its inputs open across the restart.
            self.pending_restart[node_id] = (proc, status, detail)
            timer = threading.Timer(delay, self._events.put, (("respawn", node_id),))
            timer.daemon = True
            timer.start()
            return
        self._final_exit(proc, status, detail)

    def _will_restart(self, node: ResolvedNode, status: str) -> bool:
        """Whether the node's ``restart_policy`` restarts it after it ended with ``status``."""
        if self._stopping_at is not None or self._killed or node.restart_policy == "never":
            return False
        if node.max_restarts is not None and self.restarts.get(node.id, 0) >= node.max_restarts:
            return False
        return status == "failed" or (node.restart_policy == "always" and status == "succeeded")

    def _final_exit(self, proc: _Proc, status: str, detail: str) -> None:
        """The node is done for good: record its result and tell its downstream (exited token)."""
        node_id = proc.node.id
        code = proc.popen.returncode
        ended_at = min(self._ended_at.get(node_id, time.time()), time.time())
        self.results[node_id] = NodeResult(node_id, code, status, detail, ended_at, list(proc.stderr_tail),
                                           self.restarts.get(node_id, 0))
        if not proc.log.closed:
            line = f"[dora-zenoh] node '{node_id}' {detail}"
            self._log_line(proc, line, True, line if status == "failed" else None)
            proc.log.close()
        if self.session is not None:
            proc.exited_token = self.session.liveliness().declare_token(
                keys.exited_token(self.desc.prefix, self.dataflow, node_id))

    def _respawn(self, node_id: str) -> None:
        """A node's restart delay is over: start it again (same keys, same log file)."""
        pending = self.pending_restart.pop(node_id, None)
        if pending is None:
            return
        # The old process's end no longer counts (a late token loss included); if the restart
        # is cancelled instead, _final_exit dates the node by that end, as it should.
        self._ended_at.pop(node_id, None)
        try:
            self._spawn(pending[0].node, restart=True)
        except RuntimeError as exc:
            self._final_exit(pending[0], "failed", f"could not be restarted: {exc}")

    def _cancel_restarts(self) -> None:
        """Stopping: nodes waiting to restart are done, with how their last process ended."""
        for node_id in list(self.pending_restart):
            proc, status, detail = self.pending_restart.pop(node_id)
            self._final_exit(proc, status, detail)

    def node_states(self) -> list[dict[str, Any]]:
        """A snapshot of every node for status displays: id, pid, status, restarts. Thread-safe."""
        states = []
        procs = dict(self.procs)
        for node in self.desc.nodes:
            if node.kind == "dynamic":
                states.append({"id": node.id, "pid": None, "restarts": 0, "create_time": None,
                               "status": "joined" if node.id in self.alive else "dynamic", "detail": None})
                continue
            proc = procs.get(node.id)
            result = self.results.get(node.id)
            pid = None
            if result is not None:
                status = result.status
            elif node.id in self.pending_restart:
                status = "restarting"
            elif proc is not None and proc.popen.poll() is None:
                status = "stopping" if self._stopping_at is not None else "running"
                pid = proc.popen.pid
            else:
                status = "exited"
            states.append({"id": node.id, "pid": pid, "status": status, "restarts": self.restarts.get(node.id, 0),
                           "create_time": proc.create_time if proc is not None and pid else None,
                           "detail": result.detail if result is not None else None})
        return states

    # -- stopping --------------------------------------------------------------------
    def stop(self, grace: float | None = None) -> None:
        """Ask every node to stop (STOP event); the grace period starts now. Thread-safe.

        ``grace`` replaces the run's grace period if given.
        """
        if grace is not None:
            self.options.grace = grace
        self._events.put(("stop", None))

    def kill(self, forced: bool = False) -> None:
        """Kill every node's process tree now; nothing restarts. Thread-safe.

        ``forced``: the user asked for it (reported as such rather than as a node
        that ignored STOP).
        """
        self._killed = True
        roots = []
        for p in list(self.procs.values()):
            if p.popen.poll() is None:
                p.stop_action = p.stop_action or ("forced" if forced else "killed")
                roots.append((p.popen.pid, p.create_time))
        self._events.put(("stop", None))
        terminate_trees(roots, grace=0.0)

    def _begin_stop(self) -> None:
        if self._stopping_at is not None:
            return
        self._stopping_at = time.monotonic()
        self._cancel_restarts()
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
        for p in list(self.procs.values()):
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
            elif kind == "respawn":
                self._respawn(proc)
            elif kind == "stop":
                self._begin_stop()
        self._finish()
        return RunResult(self.dataflow, self.run_id, self.log_dir,
                         [self.results[n] for n in self.procs])

    def _finish(self) -> None:
        dropped = self.log_lines_dropped()
        if dropped:
            warn(f"{sum(dropped.values())} log line(s) could not be written to {self.log_dir} "
                 f"({', '.join(f'{n}: {c}' for n, c in sorted(dropped.items()))})")
        if self._reaper is not None and self._reaper.stdin:
            self._reaper.stdin.close()
            try:
                self._reaper.wait(10)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
        self._close_session()
        self._release_cpu_latency()

    def _release_cpu_latency(self) -> None:
        if self._cpu_latency is not None:
            self._cpu_latency.release()
            self._cpu_latency = None

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
