"""Running one dataflow: spawn its nodes, stream their logs, supervise, stop, report.

`DataflowRun` is the embedded supervisor behind ``dora-zenoh run``. It hosts the
Zenoh hub the nodes connect to, but no user data passes through it: each node
links to the nodes it reads from (the link plan, :mod:`.topology`) and data goes
straight from writer to reader. It only spawns processes (with
``subprocess``, never ``fork``: this process has a Zenoh session open), watches
them, and announces facts to the nodes through liveliness tokens: "I supervise
this dataflow", "node n has exited", "stop".

This module is the run loop (start, supervise, stop, kill) and those liveliness facts;
starting one process is :mod:`.spawn`, log files and pumps :mod:`.logs` (rotation: :mod:`.logfile`), the restart
policy :mod:`.restart`, how nodes and runs end :mod:`.results`, names and dirs :mod:`.paths`,
what ended nodes sent :mod:`.sent`.
"""
from __future__ import annotations

import json
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import zenoh

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.descriptor import Descriptor, ResolvedNode
from dora_zenoh.errors import CommandError, NodeStartError
from dora_zenoh.node import shutdown, supervisor
from dora_zenoh.supervision import forkserver, runinfo
from dora_zenoh.supervision.hub import HubRequest, open_hub
from dora_zenoh.supervision.logfile import LogLimits
from dora_zenoh.supervision.logs import LineHook, NodeLogs, pump
from dora_zenoh.supervision.namelock import NameLock
from dora_zenoh.supervision.paths import make_log_dir, new_run_id, sanitize_name
from dora_zenoh.supervision.reaper import end_group, terminate_trees
from dora_zenoh.supervision.restart import RestartRule, next_delay, restarts_after
from dora_zenoh.supervision.results import NodeResult, RunResult, exit_outcome
from dora_zenoh.supervision.sent import SentCounts, SentTokens
from dora_zenoh.supervision.spawn import NodeProcess, StdoutPublisher, base_env, node_env, start_process
from dora_zenoh.supervision.startgate import StartGate, waits_for
from dora_zenoh.supervision.topology import LinkPlan
from dora_zenoh.tuning.cpulatency import CpuLatencyRequest
from dora_zenoh.wire import auth, keys, relink, zconfig, zruntime
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire.contract import barrier_timeout_for, node_config, readers_by_output, replay_outputs

__all__ = ["DataflowRun", "RunOptions", "closed_as_asked"]


def closed_as_asked(flag: bool | None, desc: Descriptor) -> bool | None:
    """Closed (True), open (False) or not said (None), from ``--secure/--open`` and the YAML's
    ``secure:``. A YAML that says ``secure: true`` stays closed: its author asked for it."""
    if flag is True or desc.secure is True:
        if flag is False:
            raise CommandError(f"{desc.path}: the dataflow says `secure: true`; --open cannot open it")
        return True
    if flag is False or desc.secure is False:
        return False
    return None


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
    on_line: LineHook | None = None
    hot_reload: bool = False  # operator runtimes reload changed operator files in place
    cpu_latency_us: int | None = None  # hold a PM QoS request while the dataflow runs (cpulatency)
    # A node failing for good stops the whole dataflow (else, as in dora, the others go on and
    # the dataflow is "degraded"); the YAML's top-level ``fail_fast: true`` sets it too.
    fail_fast: bool = False
    log_limits: LogLimits | None = None  # rotation of node logs (logfile.py; default: from the environment)
    extra_readers: tuple[str, ...] = ()  # read every output, e.g. a `run --record` recorder (spawn.node_env)
    # Several machines: the ids of the nodes this process supervises (None: every node but the
    # dynamic ones), and whether this is one machine's part of a dataflow whose name the
    # coordinator chose (the runner token is then shared with the other parts: keep the name).
    only: set[str] | None = None
    part: bool = False
    adopted: bool = False  # a part a restarted coordinator re-adopts: every node runs already
    # closed: every link needs the run's own credentials (wire.auth); None: as the YAML says (else open)
    secure: bool | None = None
    # (A closed part on another machine) the credentials file its daemon wrote from the coordinator's
    # (kept and removed by the daemon), and the other parts' hubs to link to: a closed network
    # has no machine hub in common, so the parts dial each other (then gossip links the nodes).
    secret: Path | None = None
    peers: tuple[str, ...] = ()
    # `run` answers `list`/`logs` about its dataflow on its hub session (supervision.runinfo);
    # the coordinator's dataflows answer on its owner-only control socket instead, not the hub.
    answer_on_hub: bool = True
    # Nodes whose log file already holds lines when they start (a daemon's build output): appended to.
    append_logs: set[str] = field(default_factory=set)


class DataflowRun:
    """One running dataflow. ``start()``, then ``wait()`` (or ``stop()`` from elsewhere)."""

    def __init__(self, desc: Descriptor, options: RunOptions | None = None, run_id: str | None = None) -> None:
        """``run_id``: the coordinator's, for a machine's part of its dataflow (one log folder name
        on every machine) and for one it adopts; else a new one."""
        self.desc = desc
        self.options = options or RunOptions()
        self.run_id = run_id or new_run_id()
        self.dataflow_uuid = str(uuid.uuid4())  # dora-rs's node.dataflow_id(): the same in every node
        self.dataflow = sanitize_name(self.options.name or desc.name or desc.path.stem)
        self.endpoint = self.options.endpoint or zconfig.default_endpoint()
        self.session: zenoh.Session | None = None
        self._relinker: relink.Relinker | None = None
        self._tally_dir: str | None = None  # (a part) where nodes keep their sent counts (_sent_file)
        self._name_lock: NameLock | None = None  # (a `run`) its name on this machine (supervision.hub)
        self.procs: dict[str, NodeProcess] = {}
        self.results: dict[str, NodeResult] = {}
        self.alive: set[str] = set()
        # When each node's end began, in wall-clock seconds (one clock for every process on
        # the machine): its own stamp in its end-of-stream notice, else when its token went
        # or its process exited. Our receive times alone can't order two nodes' ends: the
        # notices travel different links, which a loaded machine serves out of order.
        self._ended_at: dict[str, float] = {}
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        # Set once wait() no longer reads _events: a stop then acts at once (a part kept only for
        # its session, the coordinator's with dynamic nodes: they got no STOP, only closed inputs)
        self._unattended = False
        self._stop_lock = threading.Lock()
        self._stopping_at: float | None = None
        self._tokens: list[Any] = []
        self._reaper: subprocess.Popen | None = None
        self._forkserver: forkserver.ForkServer | None = None
        self._links: LinkPlan | None = None
        self._identity = supervisor.identity()
        self._killed = False
        self._cpu_latency: CpuLatencyRequest | None = None
        # Supervision: restarts done per node, nodes waiting out their restart delay
        # (with how their last process ended), and the messages each node's earlier
        # processes sent (their end-of-stream notices, or their sent files: .sent).
        self.restarts: dict[str, int] = {}
        self.pending_restart: dict[str, tuple[NodeProcess, str, str]] = {}
        self.sent = SentCounts()
        # node -> input -> the last sequence number its last process got (its notice): for its restart
        self._taken: dict[str, dict[str, int]] = {}
        # Given to every node it spawns (NodeConfig.secret, in their environment, never over
        # Zenoh): control notices signed with it (end of stream, stop requests) come from this
        # run's nodes. Not to be confused with `secret`, a closed run's credentials file.
        self._notice_key = secrets.token_hex(16)
        self._bad_notices: set[tuple[str, str]] = set()
        self._stood_in: dict[str, Any] = {}  # nodes another process played (replay): their exited tokens
        self._remote_exited: set[str] = set()  # (a part) nodes of other machines whose supervisor says they exited
        self._sent_tokens: SentTokens | None = None  # (a part) what nodes that ended sent: .sent
        self._gate: StartGate | None = None  # says when every node we started is ready (startgate)
        self.log_dir = make_log_dir(self.options.log_dir or self.desc.base_dir / "out", self.run_id)
        self.logs = NodeLogs(self.log_dir, self.options, self.options.log_limits)
        self.line_counts = self.logs.line_counts  # lines written per node log
        self.secret: Path | None = None  # the credentials of a closed run (wire.auth)

    def log_lines_dropped(self) -> dict[str, int]:
        """Per node: lines its log could not take (full or read-only disk)."""
        return self.logs.dropped()

    # -- start -----------------------------------------------------------------------
    def _open_hub(self) -> None:
        """The hub session and the dataflow's name on its network (see supervision.hub)."""
        opts = self.options
        hub = open_hub(HubRequest(self.endpoint, self.dataflow, self.desc.prefix,
                                  closed=bool(closed_as_asked(opts.secure, self.desc)), secret=opts.secret,
                                  peers=tuple(opts.peers), part=opts.part,
                                  lock_name=opts.answer_on_hub and not opts.part))  # (the coordinator checks its own)
        self.session, self.node_endpoint, self.dataflow = hub.session, hub.node_endpoint, hub.name
        self.secret, self._relinker, self._name_lock = hub.secret, hub.relinker, hub.name_lock

    @property
    def hub(self) -> zenoh.Session:
        """The hub session, open from ``_open_hub`` until ``_close_session``."""
        if self.session is None:
            raise RuntimeError(f"dataflow {self.dataflow!r}: the hub session is not open")
        return self.session

    def start(self) -> None:
        """Open the hub, announce the dataflow, and spawn every node. Nothing is left
        running if this raises."""
        try:
            self._check_runtimes()  # before anything starts: Zenoh panics in a process on a bad one
            if self.options.cpu_latency_us is not None:  # first: if it fails, nothing has started
                self._cpu_latency = CpuLatencyRequest(self.options.cpu_latency_us)
            self._open_hub()
            # The name is ours from here on: say so at once, so that a run started on this
            # endpoint a moment later sees it taken (supervision.hub) however slow this start is
            prefix, session = self.desc.prefix, self.hub
            self._tokens.append(session.liveliness().declare_token(keys.runner_token(prefix, self.dataflow)))
            if self.options.part:
                self._sent_tokens = SentTokens(self.hub, self.desc.prefix, self.dataflow, self.sent)
            # One link per edge (supervision.topology) on one machine, closed runs too (their
            # tools and recorder rank first and dial the planned nodes: wire.zconfig). Gossip
            # instead for a machine's part of a multi-machine dataflow (it finds the other
            # machines' listeners) and for nodes whose listener $DORA_ZENOH_LISTEN fixes.
            plan = not (settings.LISTEN.get() or self.options.part)
            self._links = LinkPlan(self.desc, self.node_endpoint) if plan else None
            # `list` and `logs` see a `run`'s dataflow too; a part (a daemon's, or one the
            # coordinator adopted) is the coordinator's to answer for, on its control socket
            if self.options.answer_on_hub and not self.options.part:
                self._tokens.append(runinfo.serve(self))
            live_nodes = keys.live_root(prefix, self.dataflow) + "/node/"
            self._live_nodes = live_nodes  # before the subscriber: its history arrives at once
            self._gate = StartGate(self._gated_nodes(), self._open_gate, self._gate_late)
            session.liveliness().declare_subscriber(
                live_nodes + "*", zenoh.handlers.Callback(self._on_live, indirect=False), history=True)
            self._live_nodes = live_nodes
            if self.options.part:
                # Another machine's node that ended for good: its supervisor declares its exited
                # token, and our nodes that read it ask us (facts) before they believe it: we vouch
                # for it (a multi-machine dataflow trusts its network: mutual TLS, and a closed one's
                # credentials on top). Without this, such an input never closed.
                session.liveliness().declare_subscriber(
                    keys.live_root(prefix, self.dataflow) + "/exited/*",
                    zenoh.handlers.Callback(self._on_remote_exited, indirect=False), history=True)
            # A node may ask for the whole dataflow to stop (an operator's STOP_ALL) with a
            # signed request: treat that like Ctrl-C. (Its stop token alone could come from
            # any Zenoh session, so it is not believed.)
            session.declare_subscriber(keys.stop_request_key(prefix, self.dataflow),
                                       zenoh.handlers.Callback(self._on_stop_request, indirect=False))
            # Nodes ask here whether an `exited`/`stop` token is ours (see Node._believe).
            session.declare_queryable(keys.facts_key(prefix, self.dataflow),
                                      zenoh.handlers.Callback(self._on_facts_query, indirect=False))
            # A node's end is dated by its end-of-stream notice when it sends one: a node
            # that fails sends it before its downstream can react, so the first failure
            # in time is the cause, not one of its victims.
            session.declare_subscriber(keys.eos_key(prefix, self.dataflow, "*"),
                                       zenoh.handlers.Callback(self._on_eos, indirect=False))
            # (the dynamic nodes are the coordinator's machine's: its part answers for them)
            only = self.options.only
            dynamic = [n for n in self.desc.nodes if n.kind == "dynamic" and (only is None or n.id in only)]
            if dynamic:
                session.declare_queryable(keys.config_key(prefix, self.dataflow, "*"),
                                          zenoh.handlers.Callback(self._on_config_query, indirect=False))
            self._reaper = subprocess.Popen([sys.executable, "-m", "dora_zenoh.supervision.reaper"],
                                            stdin=subprocess.PIPE, text=True, env=self._base_env())
            self._forkserver = forkserver.for_nodes(self.local_nodes(), self._base_env())
            if self._forkserver is not None and self._forkserver.proc is not None:
                self._reaper_watch(self._forkserver.proc.pid)
            for node in self.local_nodes():
                self._spawn(node)
            settings.START_TIMEOUT.get_or_default(then="using the default")  # said once (barrier_timeout_for)
            self._gate.arm(barrier_timeout_for(len(self.desc.nodes)))
        except BaseException:
            if self._gate is not None:
                self._gate.close()
            self.kill()
            self._close_forkserver()
            self._close_session()
            self._release_cpu_latency()
            raise
        self._started_at = time.monotonic()

    def _check_runtimes(self) -> None:
        """A ``ZENOH_RUNTIME`` in a node's ``env:``, tried (zruntime; the environment's own, every
        command tries: dora_zenoh.cli)."""
        for node in self.local_nodes():
            value = node.env.get(zconfig.RUNTIME_ENV)
            if value:
                zruntime.check(value, f"{self.desc.path}: node '{node.id}' (env:)")

    def wait_started(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every node this run started is ready or ended (its
        start gate, :mod:`.startgate`): from then on its nodes take their inputs. False if not yet."""
        return self._gate is None or self._gate.opened.wait(timeout)

    def _gated_nodes(self) -> list[str]:
        """The nodes our start gate waits for: those we start, or, for a machine's part of a
        multi-machine dataflow, every machine's (their tokens and exited tokens reach us), so
        that the whole dataflow starts together, as dora-rs's coordinator has every daemon
        wait. (A part that starts nothing, one the coordinator re-adopts, waits for none.)"""
        if self.options.adopted:
            return []
        nodes = self.local_nodes()
        if self.options.part and self.options.only:
            nodes = [n for n in self.desc.nodes if n.kind != "dynamic"]
        return [n.id for n in nodes if waits_for(n)]

    def local_nodes(self) -> list[ResolvedNode]:
        """The nodes this process spawns: every non-dynamic one, or those of ``options.only``."""
        only = self.options.only
        return [n for n in self.desc.nodes
                if n.kind != "dynamic" and (only is None or n.id in only)]

    def _base_env(self) -> dict[str, str]:
        return base_env(self.node_endpoint if self.session else self.endpoint, self.secret)

    def _spawn(self, node: ResolvedNode, restart: bool = False) -> None:
        # dora-rs's API: one dataflow_id (a UUID) for the whole run, and restart_count().
        links = self._links.links(node.id) if self._links is not None else None
        env = node_env(self._base_env(), self.desc, self.dataflow, node, self.node_endpoint,
                       restart=restart, hot_reload=self.options.hot_reload,
                       secret=self._notice_key, runner_zid=str(self.hub.zid()),
                       extra_readers=self.options.extra_readers, runner=self._identity, links=links,
                       dataflow_uuid=self.dataflow_uuid,
                       restart_count=self.restarts.get(node.id, 0) if restart else 0,
                       supervised=not self.options.part,
                       resume_seqs=self._taken.get(node.id) if restart else None, start_gate=True)
        # the node ends its wait for its readers before the grace period ends (node.end_of_stream)
        env[settings.STOP_GRACE.name] = f"{self.options.grace:g}"
        sent_file = self._sent_file(node)
        if sent_file is not None:
            env[settings.SENT_FILE.name] = sent_file
        log = self.logs.open(node.id, append=restart or node.id in self.options.append_logs)
        proc = start_process(node, self.desc.base_dir, env, log, self._forkserver)
        proc.sent_file = sent_file
        self.procs[node.id] = proc
        popen = proc.popen
        self._reaper_watch(popen.pid, proc.create_time)
        stdout_pub = None
        stdout_as = node.send_stdout_as
        if stdout_as and StdoutPublisher.wanted(node):
            stdout_pub = StdoutPublisher(self.hub, self.desc, self.dataflow, node,
                                         lambda: self._wait_for_readers(node.id, stdout_as),
                                         self._notice_key)
        proc.pumps = [
            threading.Thread(target=pump, args=(self.logs, proc, popen.stdout, False, stdout_pub), daemon=True),
            threading.Thread(target=pump, args=(self.logs, proc, popen.stderr, True, None), daemon=True),
        ]
        for t in proc.pumps:
            t.start()
        threading.Thread(target=self._waiter, args=(proc,), daemon=True).start()

    def _reaper_watch(self, pid: int, create_time: float | None = None) -> None:
        """The reaper ends this process's tree if we die (see :mod:`.reaper`)."""
        if create_time is None:
            try:
                create_time = psutil.Process(pid).create_time()
            except psutil.NoSuchProcess:
                return
        assert self._reaper and self._reaper.stdin
        self._reaper.stdin.write(f"{pid} {create_time}\n")
        self._reaper.stdin.flush()

    # -- while running -----------------------------------------------------------------
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

    def read_log(self, node_id: str, tail: int | None = None) -> tuple[list[str], int]:
        """The last ``tail`` lines of a node's log (all if None) and how many it has in all."""
        return self.logs.read(node_id, tail)

    def _waiter(self, proc: NodeProcess) -> None:
        proc.popen.wait()
        if end_group(proc.popen.pid):  # nothing of a node outlives it, not even on a clean stop
            line = (f"[dora-zenoh] node '{proc.node.id}' left processes of its own running when it exited: "
                    "stopped them (SIGTERM, SIGKILL after 1 s)")
            self.logs.write(proc, line, True, line)
        for t in proc.pumps:
            t.join(5)
        self._events.put(("exit", proc))

    def _on_live(self, sample: zenoh.Sample) -> None:
        name = str(sample.key_expr)[len(self._live_nodes):]
        if sample.kind == zenoh.SampleKind.PUT:
            self.alive.add(name)
            if self._gate is not None:  # (its token may come before _spawn has filed its process)
                self._gate.done(name)
            proc = self.procs.get(name)
            if proc is not None and proc.popen.poll() is None:
                proc.joined = True
                self._ended_at.pop(name, None)  # back after a lost link (e.g. we were paused): not ended
        else:
            self.alive.discard(name)
            self._ended_at.setdefault(name, time.time())

    def _open_gate(self) -> None:
        """Every node we started is ready (or ended, or late): declare so (startgate). On a thread
        of ours: this may be called from a Zenoh callback."""
        def declare() -> None:
            session = self.session
            if session is None:
                return
            try:
                self._tokens.append(session.liveliness().declare_token(
                    keys.ready_token(self.desc.prefix, self.dataflow, str(session.zid()))))
            except zenoh.ZError:  # closing
                pass
        threading.Thread(target=declare, name="dora-zenoh-gate", daemon=True).start()

    def _gate_late(self, missing: list[str], timeout: float) -> None:
        """Nodes that did not say they are ready in time no longer hold the others back."""
        only = self.options.only
        left = [n if only is None or n in only else f"{n} (machine '{self.desc.node(n).machine}')"
                for n in missing if n not in self.results]
        if left and self._stopping_at is None:
            warn(f"dataflow '{self.dataflow}': {', '.join(left)} did not start (no Node() ready) within "
                 f"{timeout:.0f} s; the other nodes start without waiting for them. A node that needs "
                 "longer before Node() (loading a model) is fine; one that never calls it holds its "
                 "writers' start barrier")

    def _declare_sent(self, node_id: str) -> None:
        """(A part of a multi-machine dataflow) what a node that ended for good sent per output in
        all, as liveliness tokens (keys.sent_token): its readers on other machines that missed
        its notice count what never came with it."""
        if self._sent_tokens is not None and self.session is not None:
            self._sent_tokens.declare(node_id)

    def _on_remote_exited(self, sample: zenoh.Sample) -> None:
        name = str(sample.key_expr).rsplit("/", 1)[1]
        only = self.options.only
        if sample.kind == zenoh.SampleKind.PUT and only is not None and name not in only \
                and any(n.id == name for n in self.desc.nodes):
            self._remote_exited.add(name)
            if self._gate is not None:  # ended for good before it was ready: not waited for
                self._gate.done(name)

    def _on_stop_request(self, sample: zenoh.Sample) -> None:
        raw = sample.payload.to_bytes()
        att = sample.attachment
        if wire.signed_by(self._notice_key, raw, att.to_bytes() if att is not None else None):
            self.stop()
        else:
            self._refuse(str(sample.key_expr), "stop request not signed by a node of this run")

    def _on_facts_query(self, query: zenoh.Query) -> None:
        """What this runner stands by: whether the dataflow is stopping, which nodes exited, which
        of its processes still run (a reader whose link to one closed keeps its inputs open)."""
        procs = dict(self.procs)
        facts = {"stop": self._stopping_at is not None, "ready": self._gate is not None and self._gate.is_open,
                 "exited": sorted({*self.results, *self._stood_in, *self._remote_exited}),
                 "running": sorted(n for n in procs if n not in self.results and n not in self.pending_restart),
                 "sent": self.sent.all()}
        query.reply(keys.facts_key(self.desc.prefix, self.dataflow), json.dumps(facts).encode())

    def _refuse(self, key: str, problem: str) -> None:
        """A control message we do not believe: logged once per key and kind of problem (up to
        MAX_KINDS of them; more are ignored silently)."""
        what = (key, wire.problem_kind(problem))
        if what not in self._bad_notices and len(self._bad_notices) < wire.MAX_KINDS:
            self._bad_notices.add(what)
            warn(f"ignored a message on '{key}': {problem} (another Zenoh session sent it); "
                 "further ones like it are ignored silently")

    def _on_eos(self, sample: zenoh.Sample) -> None:
        key = str(sample.key_expr)
        node = key.rsplit("/", 1)[1]
        raw = sample.payload.to_bytes()
        notice, problem = wire.check_eos(raw, node)
        att = sample.attachment
        if problem is None and not wire.signed_by(self._notice_key, raw, att.to_bytes() if att is not None else None):
            if node in self.procs:  # a dynamic node has no secret: only ours must sign
                problem = "notice not signed by a process of this run"
        if problem is not None:
            self._refuse(key, problem)
            return
        if notice.get("partial"):
            return  # one operator of a runtime stopped; the node goes on (its final notice repeats these)
        try:
            ended = float(notice.get("ended", time.time()))
        except (TypeError, ValueError, AttributeError):
            ended = time.time()
        self._ended_at.setdefault(node, ended)
        # its count comes with the notice, not from its sent file (unless that was read already);
        # wire.check_eos made sure "outputs" maps output ids to counts
        path = notice.get("sent_file")
        self.sent.notice(node, notice.get("outputs", {}), self.procs.get(node), path if isinstance(path, str) else None)
        taken = notice.get("inputs")
        if isinstance(taken, dict):
            self._taken[node] = {str(i): n for i, n in taken.items() if n.__class__ is int and n >= 0}
        if node in self.results:  # its notice came after its end was recorded (or while it was)
            self._declare_sent(node)

    def _on_config_query(self, query: zenoh.Query) -> None:
        for node in self.desc.nodes:
            if node.kind != "dynamic":
                continue
            key = keys.config_key(self.desc.prefix, self.dataflow, node.id)
            if zenoh.KeyExpr(key).intersects(query.key_expr):
                # The runner's session id, not the secret: any session may ask here.
                cfg = node_config(self.desc, self.dataflow, node, self.node_endpoint,
                                  runner_zid=str(self.hub.zid()), runner=self._identity,
                                  dataflow_uuid=self.dataflow_uuid)
                query.reply(key, cfg.to_json().encode())

    def _sent_file(self, node: ResolvedNode) -> str | None:
        """(A part of a multi-machine dataflow) where a node with replayed outputs keeps its sent
        counts, for when it is killed (wire.tally); None for any other node."""
        if not self.options.part or not replay_outputs(self.desc, node.id):
            return None
        if self._tally_dir is None:
            self._tally_dir = tempfile.mkdtemp(prefix="dora-zenoh-sent-")
        return str(Path(self._tally_dir) / f"{node.id}.{self.restarts.get(node.id, 0)}")

    def _count_unnoticed(self, proc: NodeProcess) -> None:
        """A process whose end-of-stream notice has not come (killed by a signal, a crash,
        ``os._exit``, or a notice lost or late on the way): what it sent is what it left in
        its sent file, added to its node's total (readers on other machines count with it)."""
        path, proc.sent_file = proc.sent_file, None
        if path is None:
            return
        self.sent.ended_without_notice(proc.node.id, path, proc)
        Path(path).unlink(missing_ok=True)

    def _record_exit(self, proc: NodeProcess) -> None:
        node_id = proc.node.id
        self._count_unnoticed(proc)
        status, detail = exit_outcome(proc.popen.returncode, proc.stop_action, self.options.grace,
                                      proc.supervision_lost, proc.close_failed)
        if self._will_restart(proc.node, status):
            done = self.restarts.get(node_id, 0)
            delay = next_delay(RestartRule.of(proc.node), done)
            self.restarts[node_id] = done + 1
            limit = f" of {proc.node.max_restarts}" if proc.node.max_restarts is not None else ""
            msg = (f"[dora-zenoh] node '{node_id}' {detail}; restarting in {delay:g} s "
                   f"(restart {done + 1}{limit}, restart_policy: {proc.node.restart_policy})")
            self.logs.write(proc, msg, True, msg)
            self.logs.close_log(proc)
            # No exited/<node> token: downstream keeps its inputs open across the restart.
            self.pending_restart[node_id] = (proc, status, detail)
            timer = threading.Timer(delay, self._events.put, (("respawn", node_id),))
            timer.daemon = True
            timer.start()
            return
        self._final_exit(proc, status, detail)

    def _will_restart(self, node: ResolvedNode, status: str) -> bool:
        """Whether the node's ``restart_policy`` restarts it after it ended with ``status``."""
        if self._stopping_at is not None or self._killed:
            return False
        return restarts_after(RestartRule.of(node), status, self.restarts.get(node.id, 0))

    def _final_exit(self, proc: NodeProcess, status: str, detail: str) -> None:
        """The node is done for good: record its result and tell its downstream (exited token)."""
        node_id = proc.node.id
        code = proc.popen.returncode
        ended_at = min(self._ended_at.get(node_id, time.time()), time.time())
        self.results[node_id] = NodeResult(node_id, code, status, detail, ended_at, list(proc.stderr_tail),
                                           self.restarts.get(node_id, 0))
        if self._gate is not None:
            self._gate.done(node_id)
        if not proc.log_closing:
            line = f"[dora-zenoh] node '{node_id}' {detail}"
            self.logs.write(proc, line, True, line if status == "failed" else None)
            self.logs.close_log(proc)
        if self.session is not None:
            if self.options.part:
                self.sent.cover(node_id, replay_outputs(self.desc, node_id))
            self._declare_sent(node_id)  # before its exited token: readers count with it when they close
            proc.exited_token = self.session.liveliness().declare_token(
                keys.exited_token(self.desc.prefix, self.dataflow, node_id))
        if status == "failed" and self._stopping_at is None and (
                self.options.fail_fast or self.desc.raw.get("fail_fast") is True):
            if self.options.echo:
                print(f"[dora-zenoh] fail-fast: node '{node_id}' failed, stopping the dataflow",
                      file=self.options.out or sys.stderr, flush=True)
            self._events.put(("stop", None))

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
        except NodeStartError as exc:
            self._final_exit(pending[0], "failed", f"could not be restarted: {exc}")

    def _cancel_restarts(self) -> None:
        """Stopping: nodes waiting to restart are done, with how their last process ended."""
        for node_id in list(self.pending_restart):
            proc, status, detail = self.pending_restart.pop(node_id)
            self._final_exit(proc, status, detail)

    def end_stand_in(self, node_id: str, sent: dict[str, int]) -> None:
        """A node this run did not start, whose outputs another process played (``replay
        --replace``), has ended: its end-of-stream notice (signed, so readers believe it) with
        what was played per output, then its ``exited`` fact, as for a node of our own."""
        assert self.session is not None
        body = json.dumps({"node": node_id, "outputs": sent, "ended": time.time()}).encode()
        self.session.put(keys.eos_key(self.desc.prefix, self.dataflow, node_id), body,
                         attachment=wire.sign(self._notice_key, body),
                         congestion_control=zenoh.CongestionControl.BLOCK)
        self._stood_in[node_id] = self.session.liveliness().declare_token(
            keys.exited_token(self.desc.prefix, self.dataflow, node_id))

    def node_states(self) -> list[dict[str, Any]]:
        """A snapshot of every node for status displays: id, pid, status, restarts. Thread-safe."""
        states = []
        procs = dict(self.procs)
        only = self.options.only
        for node in self.desc.nodes:
            if only is not None and node.id not in only:
                continue
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
        with self._stop_lock:
            if not self._unattended:
                self._events.put(("stop", None))
                return
        if self.session is not None:
            self._begin_stop()

    def kill(self, forced: bool = False, action: str | None = None) -> None:
        """Kill every node's process tree now; nothing restarts. Thread-safe.

        ``forced``: the user asked for it (reported as such rather than as a node
        that ignored STOP); ``action`` names another reason (``"interrupted"``: a second Ctrl-C).
        """
        self._killed = True
        roots = []
        for p in list(self.procs.values()):
            if p.popen.poll() is None:
                p.stop_action = p.stop_action or action or ("forced" if forced else "killed")
                roots.append((p.popen.pid, p.create_time))
        self._events.put(("stop", None))
        terminate_trees(roots, grace=0.0)

    def _begin_stop(self) -> None:
        if self._stopping_at is not None:
            return
        self._stopping_at = time.monotonic()
        self._cancel_restarts()
        self._tokens.append(self.hub.liveliness().declare_token(
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
            if p.node.id not in self.alive and not p.joined and p.popen.poll() is None and p.stop_action is None:
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

    def wait(self, keep_session: bool = False) -> RunResult:
        """Supervise until every spawned node has exited, then clean up and report.

        ``keep_session``: the hub session stays open (close it with :meth:`close_session`): the
        coordinator's part of a closed dataflow is the other machines' way into its network."""
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
        if keep_session:
            with self._stop_lock:
                self._unattended = True
                asked = any(kind == "stop" for kind, _ in _drain(self._events))
            if asked and self.session is not None:
                self._begin_stop()
        self._finish(keep_session)
        return RunResult(self.dataflow, self.run_id, self.log_dir,
                         [self.results[n] for n in self.procs])

    def _finish(self, keep_session: bool = False) -> None:
        self.logs.drain()  # what the nodes printed last, before the summary
        dropped = self.log_lines_dropped()
        if dropped:
            warn(f"{sum(dropped.values())} log line(s) could not be written to {self.log_dir} "
                 f"({', '.join(f'{n}: {c}' for n, c in sorted(dropped.items()))})")
        self._close_forkserver()
        if self._reaper is not None and self._reaper.stdin:
            self._reaper.stdin.close()
            try:
                self._reaper.wait(10)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
        if not keep_session:
            self._close_session()
        self._release_cpu_latency()

    def _close_forkserver(self) -> None:
        if self._forkserver is not None:
            server, self._forkserver = self._forkserver, None
            server.close()

    def _release_cpu_latency(self) -> None:
        if self._cpu_latency is not None:
            self._cpu_latency.release()
            self._cpu_latency = None

    def close_session(self) -> None:
        """The end of a session kept by ``wait(keep_session=True)`` (and of a closed run's credentials)."""
        self._close_session()

    def _close_session(self) -> None:
        if self._name_lock is not None:
            self._name_lock.release()
            self._name_lock = None
        if self._gate is not None:
            self._gate.close()
        if self._links is not None:
            self._links.release()
        if self._tally_dir is not None:
            shutil.rmtree(self._tally_dir, ignore_errors=True)
            self._tally_dir = None
        if self._relinker is not None:
            self._relinker.close()
            self._relinker = None
        if self.session is not None:
            session, self.session = self.session, None
            try:  # bounded: a link to an unreachable machine blocks Zenoh's close for 10 s (shutdown.CLOSE_WAIT)
                if not shutdown.close_session(session, shutdown.CLOSE_WAIT, node=False):
                    warn(f"dataflow '{self.dataflow}': its Zenoh session was still closing after "
                         f"{shutdown.CLOSE_WAIT:g} s (a link to a machine or port that does not answer); going on")
            except zenoh.ZError as exc:  # "close operation timed out": the run's result stands
                warn(f"dataflow '{self.dataflow}': its Zenoh session did not close cleanly: {exc}")
        if self.secret is not None and self.options.secret is None:  # a given one is its giver's
            auth.discard(self.secret)


def _drain(q: queue.SimpleQueue) -> list[Any]:
    """What is left in ``q``."""
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items
