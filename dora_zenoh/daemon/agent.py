"""``dora-zenoh daemon``: one per machine, the coordinator's hands there.

The daemon opens the machine's Zenoh hub (a peer listening on ``--listen``, linked to
the coordinator's endpoint), declares ``dora/@dz/daemon/<machine>`` for as long as it
runs, and answers ``spawn``/``stop``/``list``/``logs`` on ``dora/@dz/daemon/<machine>/ctl/*``.
Each dataflow part it runs is a :class:`DataflowRun` restricted to the nodes placed on
this machine (``RunOptions.only``), so restarts, logs, the reaper and results are the
very ones of ``run`` and of the coordinator.

Twice a second it publishes its parts and their nodes' states on
``dora/@dz/daemon/<machine>/state``: the coordinator's view of remote nodes, and how a
restarted coordinator re-adopts dataflows that kept running without it. Every part
declares the dataflow's runner token (for whoever watches the dataflow), but its nodes do
not stop when it goes (``supervised=False``): the part's reaper ends them with the daemon,
and a healed partition once made Zenoh withdraw that shared token while its holders lived.

No user data passes through the daemon: nodes link to each other directly (gossip).

On a machine other than the coordinator's, the daemon also answers its own user there (``join``,
``logs``, ``list`` of the dataflows with nodes on the machine: :mod:`.desk`).

Before a start, ``prepare`` gets the dataflow's files onto this machine (the same path, or
a copy fetched from the coordinator into the daemon's cache: :mod:`.files`) and runs the
``build:`` of the nodes placed here (:mod:`.builds`); ``spawn`` then runs them from there.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh import __version__, console
from dora_zenoh.daemon.builds import run_builds
from dora_zenoh.daemon.desk import Desk
from dora_zenoh.daemon.files import FileCache
from dora_zenoh.errors import CommandError, NotAuthorizedError, ShipError
from dora_zenoh.security import control
from dora_zenoh.signals import on_signals
from dora_zenoh.supervision.answers import Answers
from dora_zenoh.supervision.linecast import LineCast
from dora_zenoh.supervision.paths import state_home
from dora_zenoh.supervision.results import RunResult
from dora_zenoh.supervision.run import DataflowRun, RunOptions
from dora_zenoh.supervision.usage import TreeSampler
from dora_zenoh.wire import auth, keys, relink, tls, zconfig
from dora_zenoh.wire.endpoint import parse as parse_endpoint

STATE_PERIOD = 0.5  # seconds between state reports
LINK_WAIT = 5.0  # seconds to wait for the coordinator's link before saying it is missing
# Retry the coordinator's endpoint every 0.2-0.5 s while unlinked (a cheap TCP dial each time).
RECONNECT = "{period_init_ms: 200, period_max_ms: 500, period_increase_factor: 1.5}"
KEEP_ENDED = 120.0  # seconds an ended part stays in the reports (a coordinator may be restarting)


@dataclass
class Part:
    """This machine's share of one dataflow."""

    run: DataflowRun
    id: str  # the coordinator's id of the whole dataflow
    path: str
    grace: float
    root: Path | None = None  # the folder its nodes run from (a copy in the cache, or the YAML's own)
    status: str = "running"  # running | stopping | ended
    result: RunResult | None = None
    ended: float | None = None
    thread: threading.Thread | None = field(default=None, repr=False)
    # After its nodes ended: their exited tokens and what they sent, kept on the daemon's session
    # (the part's own closed with it) for the other machines' readers (see Daemon._linger).
    lingering: list[Any] = field(default_factory=list, repr=False)
    # A closed dataflow's: the credentials file written from the coordinator's, and the session on
    # its network that holds the lingering tokens (the daemon's own is not admitted there).
    secret: Path | None = None
    linger_session: zenoh.Session | None = field(default=None, repr=False)
    since: float = field(default_factory=time.monotonic)  # for its uptime (this machine's clock alone)

    def report(self, usage: dict[Any, tuple[float, int]] | None = None) -> dict[str, Any]:
        """This part for the state report; ``usage``: (CPU %, RSS) by (dataflow, node) id."""
        nodes = self.run.node_states()
        for state in nodes:
            state["cpu"], state["rss"] = (usage or {}).get((self.run.dataflow, state["id"]), (0.0, 0))
        if self.result is not None:
            for state, res in zip(nodes, self.result.nodes, strict=False):
                state["status"], state["detail"] = res.status, res.detail
        from dora_zenoh.descriptor.placement import placement_of

        # placement: where labelled nodes went, so a coordinator that adopts the dataflow knows
        return {"id": self.id, "name": self.run.dataflow, "path": self.path, "status": self.status,
                "grace": self.grace, "log_dir": str(self.run.log_dir), "nodes": nodes,
                "placement": placement_of(self.run.desc), "closed": self.secret is not None,
                "fail_fast": self.run.options.fail_fast,  # a restarted coordinator re-adopts with it
                "uptime": time.monotonic() - self.since}  # (wall clocks may differ between machines)


class Daemon:
    """Serves one machine until SIGTERM/SIGINT; its nodes stop with it."""

    def __init__(self, machine: str, coordinator: str, listen: str, cache_dir: Path | None = None,
                 labels: dict[str, str] | None = None) -> None:
        self.machine = machine
        self.labels = dict(labels or {})  # what `deploy: {labels: ...}` may ask of this machine
        self.coordinator = coordinator
        self.listen = listen
        self.cache_dir = cache_dir or state_home() / f"daemon-{machine}" / "files"
        self.files: FileCache | None = None
        # dataflow name -> (the YAML to load here, build output per node), from `prepare` to `spawn`
        self.prepared: dict[str, tuple[str, dict[str, list[str]]]] = {}
        self._building: dict[str, threading.Lock] = {}  # folder -> held while builds run in it
        self.parts: dict[str, Part] = {}  # by dataflow name
        self.lock = threading.RLock()
        self.session: zenoh.Session | None = None  # the machine's hub
        self.control: zenoh.Session | None = None  # on the control socket of a coordinator of this machine
        self._shutdown = threading.Event()
        self._tls_files: tls.TlsFiles | None = None  # what the machine's hub listens with
        self._usage = TreeSampler()  # CPU/RSS of this machine's nodes, for the reports
        self._last_usage: dict[Any, tuple[float, int]] = {}
        self._coordinator_seen = False  # its token came once (its comings and goings are logged)
        self.desk: Desk | None = None  # this machine's control socket, when the coordinator is elsewhere
        self._answers = Answers(self._command, lambda verb: keys.daemon_ctl_key(self.machine, verb),
                                "dz-daemon-answer")

    def serve(self) -> int:
        zconfig.tune_supervisor_runtime()
        try:
            # one_dialer: every peer of the machine's parts auto-connects (see zconfig.peer_config)
            conf = zconfig.peer_config([self.coordinator], [self.listen], one_dialer=True)
            # Zenoh's default waits up to 4 s between tries: after an outage, data waited for the
            # daemon's link to the coordinator (gossip links the machines' nodes through it).
            conf.insert_json5("connect/retry", RECONNECT)
            self._tls_files = tls.files_of(conf)
            self.session = zenoh.open(conf)
        except zenoh.ZError as exc:
            console.error(f"daemon '{self.machine}' cannot listen on {self.listen}: {zconfig.reason(exc)}")
            return 1
        session = self.session
        on_signals(lambda _signum: self._shutdown.set(), signal.SIGINT, signal.SIGTERM)
        if not zconfig.wait_for_peers(session, LINK_WAIT):
            problem = self._certificate_problem(self.coordinator)
            if problem is not None:  # no retry will mend it: say what is wrong, as systemd's log shows
                console.error(f"daemon '{self.machine}' cannot link to the coordinator at {self.coordinator}: "
                              f"{problem}")
                self._close_sessions()
                return 1
            console.warn(f"daemon '{self.machine}' is not linked to the coordinator at {self.coordinator} after "
                         f"{LINK_WAIT:g} s; still trying. Is it running and reachable from here?"
                         + (" Over TLS, check that both sides' certificates come from the same CA and name "
                            "the addresses used (see docs/machines.md)" if self.coordinator.startswith("tls/")
                            else ""))
        problem = self._own_certificate_problem()
        if problem is not None:
            console.error(f"daemon '{self.machine}': other machines cannot link to it on {self.listen}: {problem}")
            self._close_sessions()
            return 1
        # Commands, reports and files: over the coordinator's control socket when it is on this
        # machine (its hub is open to every local user), else over the mutual-TLS hub.
        machinery = session
        if not zconfig.is_network_endpoint(self.coordinator):
            self.control = self._open_control()
            if self.control is None:
                session.close()
                return 0 if self._shutdown.is_set() else 1
            machinery = self.control
        # (a timed-out query's error reply is no daemon: over a slow link it made the daemon exit)
        if any(r.ok is not None for r in machinery.liveliness().get(keys.daemon_token(self.machine), timeout=0.5)):
            console.error(f"a daemon with machine id '{self.machine}' is already running on this network; "
                          "give each machine its own --machine-id")
            self._close_sessions()
            return 1
        self.files = FileCache(self.cache_dir, machinery)
        # its links to other machines' peers come back after a short outage (wire.relink)
        relinker = relink.Relinker(session, self.listen)
        token = machinery.liveliness().declare_token(keys.daemon_token(self.machine))
        queryable = machinery.declare_queryable(keys.daemon_ctl_key(self.machine, "*"),
                                                zenoh.handlers.Callback(self._answers.on_query, indirect=False))
        state_pub = machinery.declare_publisher(keys.daemon_state_key(self.machine))
        # the coordinator's control socket is on its own machine: here, the daemon hands its user
        # what joins the closed dataflows running here (see daemon.desk)
        desk = None
        if zconfig.is_network_endpoint(self.coordinator) and not zconfig.on_this_machine(self.coordinator):
            desk = self.desk = Desk(self.machine, self.coordinator, {
                "join": self.desk_join, "logs": self.desk_logs, "list": self.desk_list})
            desk.open()
        print(f"[dora-zenoh] daemon {__version__} for machine '{self.machine}' listening on {self.listen}, "
              f"coordinator {self.coordinator}" + (" (commands over its control socket)" if self.control else "")
              + f" (pid {os.getpid()})"
              + (f"; its closed dataflows are joined here through {desk.path}" if desk and desk.path else ""),
              flush=True)
        # The coordinator's comings and goings, in this daemon's log (the journal under systemd):
        # nothing said that it had gone, and its nodes ran on as if nothing had happened.
        watch = session.liveliness().declare_subscriber(
            keys.coordinator_token(), zenoh.handlers.Callback(self._on_coordinator, indirect=False), history=True)
        while not self._shutdown.wait(STATE_PERIOD):
            try:
                state_pub.put(json.dumps(self.state()))
            except zenoh.ZError:
                pass
        self._stop_all()
        if desk is not None:  # after the parts: their lines are cast on it too
            desk.close()
        watch.undeclare()
        relinker.close()
        queryable.undeclare()
        self._answers.wait(10)  # no query may outlive the sessions (see supervision.answers)
        token.undeclare()
        self._close_sessions()
        print(f"[dora-zenoh] daemon '{self.machine}' stopped", flush=True)
        return 0

    def _on_coordinator(self, sample: zenoh.Sample) -> None:
        """(A Zenoh callback) the coordinator's token came or went."""
        if sample.kind == zenoh.SampleKind.PUT:
            again = self._coordinator_seen
            self._coordinator_seen = True
            print(f"[dora-zenoh] daemon '{self.machine}': " + (
                f"the coordinator at {self.coordinator} is back; it adopts what runs here" if again
                else f"linked to the coordinator at {self.coordinator}"), flush=True)
        elif self._coordinator_seen and not self._shutdown.is_set():
            print(f"[dora-zenoh] daemon '{self.machine}': lost the coordinator at {self.coordinator} (it stopped, "
                  "or the link to it is down); this machine's nodes keep running while the daemon waits for it",
                  flush=True)

    def _open_control(self) -> zenoh.Session | None:
        """A session on the control socket of the coordinator of this machine (None: shutting
        down, or this user may not reach it). It starts before the coordinator, or without it,
        as it does on the network: it waits, and says so after LINK_WAIT."""
        waited, warned = time.monotonic() + LINK_WAIT, False
        while not self._shutdown.is_set():
            try:
                path = control.locate(self.coordinator)
            except NotAuthorizedError as exc:
                why = str(exc).partition("; nothing was done")[0].removeprefix("not authorized: ")
                console.error(f"daemon '{self.machine}' cannot take commands from the coordinator on "
                              f"{self.coordinator}, which commands a daemon of its own machine only through its "
                              f"control socket: {why}. Run the daemon as that user (or root), or start the "
                              "coordinator with --group and run the daemon as a member")
                return None
            if path.exists():
                conf = control.session_config(connect=[control.control_endpoint(path)])
                conf.insert_json5("connect/retry", RECONNECT)  # a restarted coordinator: linked again
                try:
                    return zenoh.open(conf)
                except zenoh.ZError:
                    pass  # a socket left by a coordinator that is gone, or one still starting
            if not warned and time.monotonic() > waited:
                console.warn(f"daemon '{self.machine}': no coordinator answers on {path} (the control socket of "
                             f"the coordinator on {self.coordinator}) after {LINK_WAIT:g} s; still trying. "
                             "Is `dora-zenoh up` running, as this user?")
                warned = True
            self._shutdown.wait(0.3)
        return None

    def _certificate_problem(self, endpoint: str) -> str | None:
        """What a TLS handshake of Python's own finds wrong with the certificates on the way to
        ``endpoint`` (None: nothing, or not TLS). Zenoh retries a refused TLS link silently: a
        daemon with another CA's certificate only said, after 5 s, that it had no link."""
        files = self._tls_files
        if files is None or not endpoint.startswith("tls/"):
            return None
        return tls.certificate_problem(endpoint, files)

    def _own_certificate_problem(self) -> str | None:
        """What other machines will find wrong with this machine's certificate when they dial its
        listener (and its nodes', on the same address), checking that it names the address. Only
        they check that: this daemon dials the coordinator, whose certificate may be fine, so a
        certificate naming another address joined, showed every node running, and no data
        crossed (a helper's run, 4 Dec: nothing logged anywhere). So the daemon dials its own
        listener once, as they will (about 1 s at start)."""
        _, host, port = parse_endpoint(self.listen)
        if not port or host in ("0.0.0.0", "::"):
            return None  # (a wildcard listener: which address they dial is not known here)
        return self._certificate_problem(self.listen)

    def _close_sessions(self) -> None:
        for session in (self.control, self.session):
            if session is not None:
                session.close()
        self.control = self.session = None

    def state(self) -> dict[str, Any]:
        now = time.time()
        with self.lock:
            for name in [n for n, p in self.parts.items() if p.ended and now - p.ended > KEEP_ENDED]:
                self._forget(self.parts.pop(name))
            parts = list(self.parts.values())
            usage = self._usage.sample([{**s, "id": (p.run.dataflow, s["id"])} for p in parts
                                        for s in p.run.node_states()])
            self._last_usage = usage  # (`list NAME` on this machine: see desk_list)
        return {"machine": self.machine, "pid": os.getpid(), "listen": self.listen, "time": now,
                "labels": self.labels, "parts": [p.report(usage) for p in parts]}

    def _stop_all(self) -> None:
        with self.lock:
            parts = [p for p in self.parts.values() if p.status != "ended"]
        for part in parts:
            part.run.stop()
        for part in parts:
            if part.thread is not None:
                part.thread.join(part.grace + 15)
        with self.lock:
            for part in self.parts.values():
                self._forget(part)

    # -- commands ------------------------------------------------------------------------------
    def _command(self, verb: str, args: Any, _query: zenoh.Query) -> dict[str, Any]:
        """One command of the coordinator's (see supervision.answers)."""
        handler = getattr(self, f"cmd_{verb}", None)
        if handler is None:
            raise CommandError(f"unknown daemon command '{verb}'")
        return handler(**args)

    def _load(self, path: str | Path, nodes: list[str], placement: dict[str, str] | None = None) -> Any:
        """The dataflow, with the machines the coordinator chose for its labelled nodes."""
        from dora_zenoh.descriptor import DescriptorError, load_descriptor
        from dora_zenoh.descriptor.placement import place

        try:
            desc = load_descriptor(path)
        except DescriptorError as exc:
            raise CommandError(f"machine '{self.machine}': {exc}") from None
        except OSError as exc:
            raise CommandError(f"machine '{self.machine}' cannot read {path}: {exc}; the dataflow's "
                               "folder must exist at the same path on every machine") from None
        unknown = sorted(set(nodes) - {n.id for n in desc.nodes})
        if unknown:
            raise CommandError(f"machine '{self.machine}': {path} has no node(s) {', '.join(unknown)} "
                               "(is its copy of the file the same?)")
        try:
            place(desc, placement or {})
        except KeyError as exc:
            raise CommandError(f"machine '{self.machine}': {path} has no node {exc} (is its copy of the file "
                               "the same?)") from None
        return desc

    def cmd_prepare(self, path: str, name: str, nodes: list[str], files: dict[str, Any] | None = None,
                    build: bool = False, placement: dict[str, str] | None = None,
                    keep: bool = True) -> dict[str, Any]:
        """Before a start: the dataflow's files on this machine, and its nodes' builds run here.
        ``keep=False`` (``dora-zenoh build FILE``): no start follows; the build output comes back."""
        with self.lock:
            old = self.parts.get(name)
            if keep and old is not None and old.status != "ended":
                raise CommandError(f"machine '{self.machine}' already runs dataflow '{name}'")
            if keep and old is not None:  # its tokens would speak for the new run's nodes
                self._forget(old)
            in_use = {p.root for p in self.parts.values() if p.status != "ended" and p.root is not None}
        yaml, tree, fetched = Path(path), None, 0
        cache = self.files
        if files and cache is not None:
            try:
                prepared = cache.prepare(files, in_use)
            except ShipError as exc:
                raise CommandError(f"machine '{self.machine}' did not get the files of dataflow '{name}': "
                                   f"{exc}") from None
            except OSError as exc:  # a full or read-only disk
                raise CommandError(f"machine '{self.machine}' cannot write its copy of dataflow '{name}' in "
                                   f"{cache.base}: {exc} (its daemon's --cache-dir)") from None
            yaml = prepared.root / Path(path).relative_to(str(files["root"]))
            tree, fetched = (prepared.root if prepared.copy else None), prepared.fetched_bytes
            for rel in prepared.repaired:
                console.warn(f"machine '{self.machine}': the cached copy of {rel} was changed or removed (its "
                             f"sha256 differs from the coordinator's); fetched it again into {prepared.root}")
            where = f"a copy in {prepared.root}" if tree else "the same path"
            if prepared.differs:
                where += f" ({files['root']} here differs from the coordinator's folder: {prepared.differs})"
            print(f"[dora-zenoh] dataflow '{name}': files from {where}; fetched {prepared.fetched_files} "
                  f"file(s), {fetched} bytes", flush=True)
        desc = self._load(yaml, nodes, placement)
        # A copy is built once, when made; a folder of the user's (or any copy) with `start --build`.
        output: dict[str, list[str]] = {}
        if build or (tree is not None and cache is not None):
            with self.lock:  # two starts of the same content must not build in the same copy at once
                building = self._building.setdefault(str(desc.base_dir), threading.Lock())
            with building:
                skip = cache.built(tree) if tree is not None and cache is not None and not build else set()
                mark = (lambda command: cache.mark_built(tree, command)) if tree is not None and cache else None
                output = run_builds(desc, set(nodes), self.machine, skip, mark)
        answer = {"machine": self.machine, "path": str(yaml), "copy": tree is not None, "fetched_bytes": fetched,
                  "built": sorted(output)}
        if not keep:
            return {**answer, "output": output}
        with self.lock:
            self.prepared[name] = (str(yaml), output)
        return answer

    def cmd_spawn(self, path: str, name: str, id: str, nodes: list[str], grace: float = 10.0,
                  log_dir: str | None = None, fail_fast: bool = False,
                  restarts: dict[str, int] | None = None, placement: dict[str, str] | None = None,
                  credentials: str | None = None, peers: list[str] | None = None,
                  readers: list[str] | None = None, cpu_latency_us: int | None = None) -> dict[str, Any]:
        """Start this machine's nodes of a dataflow. A closed one (``credentials``, the text of
        its credentials file) gets a network of its own here too, linked to ``peers``.
        ``readers``: ids that read every output though the YAML does not say so (a recorder);
        ``cpu_latency_us``: the PM QoS request to hold here while they run."""
        with self.lock:
            local, built = self.prepared.pop(name, (path, {}))
        desc = self._load(local, nodes, placement)  # `path` is the coordinator's: the reports name it
        with self.lock:
            old = self.parts.get(name)
            if old is not None and old.status != "ended":
                raise CommandError(f"machine '{self.machine}' already runs dataflow '{name}'")
            if old is not None:
                self._forget(old)
            secret = auth.keep_secret(credentials) if credentials is not None else None
            opts = RunOptions(name=name, endpoint=self.listen, grace=grace, echo=False,
                              log_dir=Path(log_dir) if log_dir else None, only=set(nodes), part=True,
                              cpu_latency_us=cpu_latency_us, fail_fast=fail_fast,
                              # a build's output, or (restarts) the log of the process lost with a daemon
                              append_logs=set(built) | set(restarts or ()),
                              secure=secret is not None, secret=secret, peers=tuple(peers or ()),
                              extra_readers=tuple(readers or ()))
            run = DataflowRun(desc, opts, run_id=id)  # the coordinator's: one log folder name everywhere
            run.restarts.update(restarts or {})  # nodes the coordinator restarts after a lost daemon
            # lines for `start --attach` and `logs -f`: on the control socket of a coordinator of this
            # machine, else on the machines' network while the coordinator relays them to a follower
            here = self.desk.session if self.desk is not None else None
            cast_on = [s for s in (self.control or self.session, here) if s is not None]
            if cast_on:  # (and on this machine's own control socket: `logs -f` here, see daemon.desk)
                opts.on_line = LineCast(cast_on, name, id, run.line_counts, nodes)
            part = Part(run, id, path, grace, root=desc.base_dir, secret=secret)
            self.parts[name] = part
        for node, lines in built.items():  # the build's output opens the node's log
            with open(run.logs.path(node), "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)
        try:
            run.start()
        except Exception as exc:
            with self.lock:
                self.parts.pop(name, None)
            self._forget(part)
            raise CommandError(f"machine '{self.machine}': dataflow '{name}' did not start: {exc}") from None
        part.thread = threading.Thread(target=self._supervise, args=(part,), daemon=True,
                                       name=f"dz-{name}")
        part.thread.start()
        print(f"[dora-zenoh] started {len(run.procs)} node(s) of dataflow '{name}' ({id})", flush=True)
        return {"machine": self.machine, "nodes": len(run.procs), "log_dir": str(run.log_dir)}

    def _supervise(self, part: Part) -> None:
        result = part.run.wait()
        if isinstance(part.run.options.on_line, LineCast):
            part.run.options.on_line.close()
        with self.lock:
            part.result, part.ended, part.status = result, time.time(), "ended"
        print(f"[dora-zenoh] dataflow '{part.run.dataflow}' ended on this machine", flush=True)
        self._linger(part)

    def _linger(self, part: Part) -> None:
        """Its nodes ended, while the dataflow may go on on other machines: what their readers
        there must still learn outlives the part's session. A reader on another machine closes
        its input on the node's ``exited`` token, and counts what never arrived with its
        ``sent`` tokens (keys.sent_token): if the link was down when the node ended (a
        partition), both reach it only after the link is back. Kept until the dataflow starts
        again here, the coordinator says it is over (``forget``), or the part leaves the reports."""
        session, run = self.session, part.run
        if session is None:
            return
        prefix, name = run.desc.prefix, run.dataflow
        try:
            if part.secret is not None:  # a closed network admits its own credentials only
                session = part.linger_session = zenoh.open(zconfig.peer_config(
                    list(run.options.peers), [], secret=str(part.secret)))
            kept = [session.liveliness().declare_token(keys.sent_token(prefix, name, node, output, int(count)))
                    for node, sent in sorted(run.sent.all().items()) if node in run.results
                    for output, count in sorted(sent.items())]
            kept += [session.liveliness().declare_token(keys.exited_token(prefix, name, node)) for node in run.results]
        except (zenoh.ZError, ValueError, TypeError):  # going down
            return
        with self.lock:
            part.lingering = kept

    @staticmethod
    def _forget(part: Part) -> None:
        """What an ended part kept for other machines' readers, and a closed one's credentials."""
        for entity in part.lingering:
            try:
                entity.undeclare()
            except zenoh.ZError:
                pass
        part.lingering = []
        if part.linger_session is not None:
            part.linger_session.close()
            part.linger_session = None
        if part.secret is not None:
            auth.discard(part.secret)
            part.secret = None

    def cmd_forget(self, name: str) -> dict[str, Any]:
        """The coordinator: the dataflow is over on every machine (no reader left to tell)."""
        with self.lock:
            part = self.parts.get(name)
        if part is not None and part.status == "ended":
            self._forget(part)
        return {"machine": self.machine}

    # -- what the daemon answers on its own machine (daemon.desk) ------------------------------
    def _here(self, target: str, running: bool = False) -> Part:
        """The part of dataflow ``target`` (its name or id) on this machine, or CommandError."""
        with self.lock:
            part = next((p for p in self.parts.values() if target in (p.run.dataflow, p.id)), None)
        if part is None or (running and part.status == "ended"):
            raise CommandError(f"machine '{self.machine}' runs no node of a dataflow '{target}': a closed dataflow is "
                               "joined from the coordinator's machine or from one that runs some of its nodes, "
                               f"and `dora-zenoh list` on the coordinator's machine ({self.coordinator}) shows "
                               "every dataflow")
        return part

    def desk_join(self, target: str) -> dict[str, Any]:
        """Where this machine's part of ``target`` listens, and its credentials when it is closed."""
        part = self._here(target, running=True)
        if part.secret is None:  # open: through the coordinator's hub, as from anywhere
            return {"closed": False, "endpoint": self.coordinator}
        return {"closed": True, "endpoint": part.run.node_endpoint, "credentials": str(part.secret),
                "observer": str(auth.observer_file(part.secret))}

    def desk_logs(self, target: str, node: str, tail: int | None = None) -> dict[str, Any]:
        """A node of this machine's log (:meth:`cmd_logs`), as the coordinator's ``logs`` answers it."""
        part = self._here(target)
        return {**self.cmd_logs(part.run.dataflow, node, tail), "id": part.id, "name": part.run.dataflow,
                "active": part.status != "ended"}

    def desk_list(self, target: str | None = None, counts: bool = True) -> dict[str, Any]:
        """``list [NAME]`` of this machine's parts and nodes (``machine_only`` says so); the nodes'
        counts are the part's own (``counts`` asks for nothing more here)."""
        if target is not None:
            return {"dataflow": self._desk_row(self._here(target), nodes=True), "machine_only": self.machine}
        with self.lock:
            parts = list(self.parts.values())
        return {"dataflows": [self._desk_row(p) for p in parts], "machine_only": self.machine}

    def _desk_row(self, part: Part, nodes: bool = False) -> dict[str, Any]:
        """A part as a row of the coordinator's ``list`` (with its nodes: of ``list NAME``)."""
        report = part.report(self._last_usage)  # the last state report's (sampling here would reset its CPU%)
        states = [{**n, "machine": self.machine, "sent": part.run.sent.of(n["id"])} for n in report["nodes"]]
        result = part.result
        row = {"id": part.id, "name": part.run.dataflow, "uptime": report["uptime"],
               "status": part.status if result is None else ("succeeded" if result.ok else "failed"),
               "cpu": round(sum(n["cpu"] for n in states), 1), "rss": sum(n["rss"] for n in states),
               "log_dir": report["log_dir"], "closed": report["closed"], "nodes": len(states),
               "summary": result.summary() if result is not None else None, "machine_only": self.machine}
        return {**row, "nodes": states} if nodes else row

    def _part(self, name: str) -> Part:
        with self.lock:
            part = self.parts.get(name)
        if part is None:
            raise CommandError(f"machine '{self.machine}' runs no dataflow '{name}'")
        return part

    def cmd_stop(self, name: str, grace: float | None = None, force: bool = False,
                 id: str | None = None) -> dict[str, Any]:  # noqa: A002 - the command's argument name
        part = self._part(name)
        if id is not None and part.id != id:  # a later start of that name: not the one to stop
            raise CommandError(f"machine '{self.machine}' runs no dataflow '{name}' with id {id}")
        if part.status == "running":
            part.status = "stopping"
        if force:
            threading.Thread(target=part.run.kill, kwargs={"forced": True}, daemon=True).start()
        else:
            part.run.stop(grace)
        return {"machine": self.machine}

    def cmd_credentials(self, name: str) -> dict[str, Any]:
        """A restarted coordinator adopting a closed dataflow: its credentials, and where this
        machine's part listens (over the control link only, never in the state reports)."""
        part = self._part(name)
        if part.secret is None or part.status == "ended":
            raise CommandError(f"machine '{self.machine}' runs no closed dataflow '{name}'")
        return {"credentials": part.secret.read_text(), "endpoint": part.run.node_endpoint}

    def cmd_list(self) -> dict[str, Any]:
        return self.state()

    def cmd_logs(self, name: str, node: str, tail: int | None = None) -> dict[str, Any]:
        part = self._part(name)
        if node not in {n.id for n in part.run.local_nodes()}:
            known = {n.id: n.machine for n in part.run.desc.nodes}
            if node not in known:  # (as the coordinator says it)
                raise CommandError(f"dataflow '{name}' has no node '{node}' (nodes: {', '.join(known)})")
            where = known[node]
            raise CommandError(f"node '{node}' of dataflow '{name}' does not run on machine '{self.machine}'"
                               + (f" but on '{where}'" if where else "")
                               + f": `dora-zenoh logs` on the coordinator's machine ({self.coordinator}) shows it")
        lines, count = part.run.read_log(node, tail)
        return {"lines": lines, "count": count, "path": str(part.run.log_dir / f"log_{node}.txt")}


def main(machine: str, coordinator: str, listen: str, cache_dir: Path | None = None,
         labels: dict[str, str] | None = None) -> int:
    """``dora-zenoh daemon``: serve in the foreground until SIGTERM."""
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return Daemon(machine, coordinator, listen, cache_dir, labels).serve()
