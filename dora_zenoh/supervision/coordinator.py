"""The long-running coordinator: many dataflows, supervised, operated over Zenoh.

``dora-zenoh coordinator`` (or ``up``, which starts it in the background) hosts the
Zenoh hub on the loopback endpoint and answers the CLI's commands on queryables
under ``dora/@dz/ctl/<verb>`` (JSON in, JSON out). Those queryables, the log stream
and the results live on a second Zenoh session that listens only on a Unix socket in
a directory of the coordinator's user (:mod:`dora_zenoh.security.control`): only that
user, root and an optional ``--group`` can operate it, and nothing reachable through
the hub answers a command. Each dataflow is a :class:`DataflowRun`, exactly
what ``dora-zenoh run`` uses, so restarts, logs and results behave the same; the
coordinator only adds bookkeeping, log streaming (``dora/@dz/log/<dataflow>/<node>``)
and process statistics. No user data passes through it.

If the coordinator dies, even with SIGKILL, each dataflow's nodes see its
``runner`` liveliness token vanish and stop, and each dataflow's reaper (whose
stdin pipe was held by the coordinator) kills whatever is left; a new coordinator
starts with nothing running.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh import __version__
from dora_zenoh.descriptor.placement import (
    labelled_nodes,
    local_nodes,
    place,
    placement_of,
    remote_nodes,
    resolve,
    unplaced_nodes,
)
from dora_zenoh.errors import CommandError, DoraZenohError, PlacementError
from dora_zenoh.security import access, control
from dora_zenoh.signals import on_signals
from dora_zenoh.supervision import home as home_mod
from dora_zenoh.supervision import ship
from dora_zenoh.supervision.answers import Answers
from dora_zenoh.supervision.entries import Entry, RemotePart
from dora_zenoh.supervision.keptoffers import KeptOffers
from dora_zenoh.supervision.linecast import LineCast
from dora_zenoh.supervision.machines import MachineWatch
from dora_zenoh.supervision.paths import sanitize_name
from dora_zenoh.supervision.run import DataflowRun, RunOptions, closed_as_asked
from dora_zenoh.supervision.usage import TreeSampler
from dora_zenoh.wire import auth, keys, relink, zconfig

SAMPLE_PERIOD = 1.0  # seconds between CPU/RSS samples of every node's process tree
LOGS_SILENCE = 3.0  # `logs` of a node on a machine that has not reported for this long: unreachable


class Coordinator(MachineWatch):
    """Serves the control plane until ``down`` (or SIGTERM/SIGINT). Other machines' daemons:
    :class:`dora_zenoh.supervision.machines.MachineWatch`."""

    def __init__(self, endpoint: str | None = None, group: str | None = None, home: str | None = None,
                 home_log: Path | None = None) -> None:
        self.endpoint = endpoint or zconfig.default_endpoint()
        self.group = group
        # This machine's id (`up --machine-id`): while its daemon is connected, it runs the nodes
        # without `deploy`, so that they outlive this process (docs/machines.md, design choices).
        self.home = home
        # `up`'s daemon: started again when its process dies (supervision.home)
        self._keeper = (home_mod.Keeper(home, self.endpoint, home_log, lambda: self._down_started)
                        if home and home_log else None)
        self.gid: int | None = None
        self.owner = os.getuid()
        self.ctl: zenoh.Session | None = None  # the control session (Unix socket only)
        self.machinery: zenoh.Session | None = None  # where the daemons are commanded (see serve)
        self.ctl_path: Path | None = None
        self.entries: dict[str, Entry] = {}
        self.lock = threading.RLock()
        self.session: zenoh.Session | None = None
        self.started = time.time()
        self._shutdown = threading.Event()
        self._down_started = False
        # commands being answered: `down`'s own answer must leave before the sessions close
        self._answers = Answers(self._command, keys.ctl_key, "dz-answer")
        self._usage = TreeSampler()
        self.daemons: dict[str, float] = {}  # machine id -> when it connected (see _on_daemon)
        self.labels: dict[str, dict[str, str]] = {}  # machine id -> its daemon's --labels (its reports)
        self.pids: dict[str, int] = {}  # machine id -> its daemon's pid (its reports; `down` ends this machine's)
        self._heard: dict[str, float] = {}  # machine -> monotonic time of its last state report
        self._abandoned: dict[str, tuple[str, dict[str, bool]]] = {}  # failed starts' parts (MachineWatch)
        self._lost_at: dict[str, float] = {}  # machine -> monotonic time it was last lost
        self.ship: ship.Server | None = None  # serves dataflow folders to the daemons (made on first use)
        self.kept = KeptOffers(self.endpoint)  # each dataflow's start offer, also for our successor

    # -- life cycle ----------------------------------------------------------------------------
    def serve(self) -> int:
        """Open the hub, answer commands until told to go down; returns the exit code."""
        # (`dora-zenoh coordinator` first asks whether a coordinator answers there: the server
        # does not import the client.)
        if zconfig.tcp_port_in_use(self.endpoint):
            print(f"[dora-zenoh] error: {self.endpoint} is in use by another program (a `dora-zenoh run`?); "
                  "pick another with --endpoint", file=sys.stderr, flush=True)
            return 1
        try:
            self.gid = control.group_id(self.group) if self.group else None
            self.ctl_path = control.prepare(self.endpoint, self.gid)
        except (DoraZenohError, OSError) as exc:
            print(f"[dora-zenoh] error: cannot make the control socket's directory: {exc}", file=sys.stderr,
                  flush=True)
            return 1
        try:
            # first_dialer: it dials every node it learns of (it queries their counts), planned
            # ones included, and no daemon, part or node dials it back at the same moment
            # (zconfig.peer_config); tools dial it themselves.
            zconfig.tune_supervisor_runtime()  # before the first session: Zenoh reads it once
            self.session = zenoh.open(zconfig.peer_config([], [self.endpoint], first_dialer=True))
        except (zenoh.ZError, DoraZenohError) as exc:
            print(f"[dora-zenoh] error: cannot listen on {self.endpoint}: {exc}", file=sys.stderr, flush=True)
            return 1
        try:
            self.ctl = zenoh.open(control.session_config(listen=[control.control_endpoint(self.ctl_path)]))
            control.restrict_socket(self.ctl_path, self.gid)
        except (zenoh.ZError, OSError) as exc:
            print(f"[dora-zenoh] error: cannot listen on the control socket {self.ctl_path}: {exc}",
                  file=sys.stderr, flush=True)
            self.session.close()
            if self.ctl is not None:
                self.ctl.close()
            return 1
        # it dials every node: those on other machines are linked again after a short outage
        relinker = relink.Relinker(self.session, self.endpoint) if zconfig.is_network_endpoint(self.endpoint) else None
        self._token = self.session.liveliness().declare_token(keys.coordinator_token())
        self._queryable = self.ctl.declare_queryable(
            keys.ctl_key("*"), zenoh.handlers.Callback(self._answers.on_query, indirect=False))
        # On a loopback endpoint every daemon is on this machine: it takes commands, reports and
        # fetches files over the control socket (this user, root, --group), never over the hub,
        # which any local user can join (a daemon there ran whatever anyone asked: docs/security.md).
        self.machinery = self.session if zconfig.is_network_endpoint(self.endpoint) else self.ctl
        self._daemon_sub = self.machinery.liveliness().declare_subscriber(
            keys.daemon_token("*"), zenoh.handlers.Callback(self._on_daemon, indirect=False), history=True)
        self._state_sub = self.machinery.declare_subscriber(
            keys.daemon_state_key("*"), zenoh.handlers.Callback(self._on_daemon_state, indirect=False))
        on_signals(lambda _signum: self._begin_down(None), signal.SIGINT, signal.SIGTERM)
        self.kept.prune_later(lambda: set(self.entries))  # what an earlier coordinator kept, not adopted
        threading.Thread(target=self._sampler, name="dz-sampler", daemon=True).start()
        who = control.user_name(self.owner) + (f" and group '{self.group}'" if self.group else "")
        print(f"[dora-zenoh] coordinator {__version__} listening on {self.endpoint} (pid {os.getpid()}); "
              f"commands from {who} (and root) on {self.ctl_path}", flush=True)
        while not self._shutdown.wait(0.5):
            pass
        self._queryable.undeclare()  # no new command: every query must be gone before the process is
        self._answers.wait(10)  # bounded: a `start` still starting fails anyway once the sessions close
        if self.ship is not None:
            self.ship.close()
        if relinker is not None:
            relinker.close()
        self.machinery = None
        self.session.close()
        self.session = None
        ctl, self.ctl = self.ctl, None
        ctl.close()
        control.release(self.ctl_path)
        print("[dora-zenoh] coordinator stopped", flush=True)
        return 0

    def _begin_down(self, grace: float | None) -> int:
        """Stop every dataflow gracefully, then the coordinator (in the background)."""
        with self.lock:
            active = [e for e in self.entries.values() if e.active]
            if self._down_started:
                return len(active)
            self._down_started = True
        threading.Thread(target=self._down, args=(active, grace), daemon=True).start()
        return len(active)

    def _down(self, active: list[Entry], grace: float | None) -> None:
        for entry in active:
            self._stop_entry(entry, grace, False)
        for entry in active:
            if entry.thread is not None:
                entry.thread.join((grace if grace is not None else entry.grace) + 30)
        self._shutdown.set()

    # -- queries ---------------------------------------------------------------------------------
    def _command(self, verb: str, args: Any, query: zenoh.Query) -> dict[str, Any]:
        """One CLI command (see supervision.answers), from its owner, root or the group only."""
        handler = getattr(self, f"cmd_{verb}", None)
        if handler is None or not isinstance(args, dict):
            raise CommandError(f"unknown command '{verb}'")
        who = access.requester(query.attachment, self.owner, self.gid)
        args.pop("requester", None)  # only ever set here
        if verb in ("start", "build"):  # the commands that take a path of the requester's
            args["requester"] = who
        return handler(**args)

    def _find(self, target: str, active_only: bool = False) -> Entry:
        with self.lock:
            entries = list(self.entries.values())
        for entry in reversed(entries):  # newest first; running ones win over ended ones
            if entry.id == target or (entry.name == target and entry.active):
                return entry
        if not active_only:
            for entry in reversed(entries):
                if entry.name == target:
                    return entry
        what = "running dataflow" if active_only else "dataflow"
        raise CommandError(f"no {what} named '{target}' (or with that id); see `dora-zenoh list`")

    # -- commands ------------------------------------------------------------------------------
    def cmd_info(self) -> dict[str, Any]:
        with self.lock:
            running = sum(e.active for e in self.entries.values())
        return {"pid": os.getpid(), "endpoint": self.endpoint, "version": __version__,
                "uptime": time.time() - self.started, "running": running, "daemons": sorted(self.daemons),
                "home": self.home, "home_pid": self._home_pid(),
                "labels": {m: self.labels.get(m, {}) for m in sorted(self.daemons)}}

    def cmd_start(self, path: str, name: str | None = None, grace: float = 10.0,
                  log_dir: str | None = None, cpu_latency_us: int | None = None,
                  fail_fast: bool = False, requester: access.Requester | None = None,
                  secure: bool | None = None, record: str | None = None, build: bool = False) -> dict[str, Any]:
        if self._down_started:
            raise CommandError("the coordinator is going down")
        if requester is not None:  # a command from a client (restart re-uses what start checked)
            path = str(access.check_readable(path, requester, "the dataflow file"))
            if log_dir:
                log_dir = str(access.check_writable_dir(log_dir, requester, "--log-dir"))
            else:
                access.check_writable_dir(str(Path(path).parent / "out"), requester, "the log directory")
        desc = self._load(path)
        wanted = sanitize_name(name or desc.name or desc.path.stem)
        with self.lock:
            if any(e.active and e.name == wanted for e in self.entries.values()):
                raise CommandError(f"a dataflow named '{wanted}' is already running: stop it first, "
                                   "or start this one with --name")
            if self.session is not None and list(self.session.liveliness().get(
                    keys.runner_token(desc.prefix, wanted), timeout=keys.NAME_CHECK_TIMEOUT)):
                raise CommandError(f"a dataflow named '{wanted}' is already running on this network "
                                   "(a `dora-zenoh run`?): pick another name with --name")
            placed = self._place(desc)
            asked = closed_as_asked(secure, desc)
            # Closed by default (its cost is small: docs/security.md); across machines its credentials
            # reach the daemons with `spawn`, on top of mutual TLS between the machines.
            closed = asked if asked is not None else True
            opts = RunOptions(name=wanted, endpoint=self.endpoint, grace=grace, echo=False,
                              log_dir=Path(log_dir) if log_dir else None, cpu_latency_us=cpu_latency_us,
                              only=local_nodes(desc) if placed else None, part=bool(placed),
                              fail_fast=fail_fast, secure=closed, answer_on_hub=False,
                              extra_readers=(keys.RECORDER_NODE,) if record else ())
            run = DataflowRun(desc, opts)
            entry = Entry(run, str(desc.path), grace)
            entry.remote = {m: RemotePart(m, ids, waits=self._restartable(desc, ids)) for m, ids in placed.items()}
            if self.ctl is not None:
                entry.lines = opts.on_line = LineCast(self.ctl, wanted, entry.id, run.line_counts,
                                                            [n.id for n in run.local_nodes()])
            self.entries[entry.id] = entry  # reserves the name while it starts
        try:
            # Files and builds first, on every machine: a failure there starts nothing anywhere.
            if entry.remote:
                self._prepare_machines(desc, {m: p.nodes for m, p in entry.remote.items()}, wanted, build,
                                       entry=entry)
            if build:
                self._build_here(desc, {n.id for n in run.local_nodes()})
            self._check_not_stopped(entry)
            run.start()
            self._relay_lines(entry)  # before their nodes start: their first lines are followed too
            for part in entry.remote.values():
                part.spawn_asked = True  # (its answer may be lost while the daemon starts it)
                reply = self._daemon_call(part.machine, "spawn", path=str(desc.path), name=wanted, id=entry.id,
                                          nodes=part.nodes, grace=grace, fail_fast=fail_fast or None,
                                          placement=placement_of(desc) or None, **self._part_args(entry))
                part.status, part.log_dir, part.heard = "running", reply.get("log_dir"), time.monotonic()
            self._check_not_stopped(entry)
        except Exception as exc:
            unreached = self._abandon_parts(entry)
            run.kill()
            if run.session is not None:
                threading.Thread(target=run.wait, daemon=True).start()
            else:
                try:  # nothing started: no empty log folder is left behind
                    run.log_dir.rmdir()
                except OSError:
                    pass
            for cast in (entry.lines, entry.relay):
                if cast is not None:
                    cast.close()
            with self.lock:
                self.entries.pop(entry.id, None)
            self._release_offer(entry)
            later = (f"; machine(s) {', '.join(unreached)} did not answer: what they started of it is stopped "
                     "when their daemon reports again") if unreached else ""
            raise CommandError(f"dataflow '{wanted}' did not start: {exc}{later}") from None
        if record:
            self._start_recorder(entry, Path(record))
        entry.thread = threading.Thread(target=self._supervise, args=(entry,), name=f"dz-{entry.id}",
                                        daemon=True)
        entry.thread.start()
        print(f"[dora-zenoh] started dataflow '{entry.name}' ({entry.id}) from {entry.path}", flush=True)
        return {"id": entry.id, "name": entry.name, "nodes": len(run.procs) + sum(
                    len(p.nodes) for p in entry.remote.values()), "log_dir": str(run.log_dir),
                "endpoint": run.node_endpoint, "machines": sorted(entry.remote)}

    def cmd_build(self, path: str, name: str | None = None,
                  requester: access.Requester | None = None) -> dict[str, Any]:
        """``dora-zenoh build FILE``: the builds of the nodes placed on other machines, run there
        in the files a start would use (shipped and cached alike); the CLI builds the others
        itself. Nothing starts. Returns each machine's build output."""
        if self._down_started:
            raise CommandError("the coordinator is going down")
        if requester is not None:
            path = str(access.check_readable(path, requester, "the dataflow file"))
        desc = self._load(path)
        with self.lock:
            placed = self._place(desc, home=False)  # the CLI builds the others, in this folder
        if not placed:
            return {"machines": {}}
        answers = self._prepare_machines(desc, placed, sanitize_name(name or desc.name or desc.path.stem),
                                         build=True, keep=False)
        return {"machines": {m: {"nodes": placed[m], "output": a.get("output", {}), "path": a.get("path")}
                             for m, a in answers.items()}}

    @staticmethod
    def _load(path: str) -> Any:
        from dora_zenoh.descriptor import DescriptorError, load_descriptor

        try:
            return load_descriptor(path)  # validated again: the file may have changed since `check`
        except DescriptorError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None

    def _place(self, desc: Any, home: bool = True) -> dict[str, list[str]]:
        """(Under the lock) the nodes of each other machine, labelled ones placed now (and, with
        ``home``, those without ``deploy`` on this machine's daemon); CommandError naming a machine
        without a connected daemon."""
        if labelled_nodes(desc):  # `deploy: {labels: ...}`: a machine whose daemon has them, chosen now
            try:
                place(desc, resolve(desc, {m: self.labels.get(m, {}) for m in self.daemons}))
            except PlacementError as exc:
                raise CommandError(str(exc)) from None
        if home and self.home is not None:
            here = unplaced_nodes(desc)
            if here and self.home in self.daemons:
                place(desc, dict.fromkeys(here, self.home))
            elif here:
                print(f"[dora-zenoh] the daemon of this machine ('{self.home}') is not connected: the coordinator "
                      f"runs {', '.join(here)} itself (they end with it)", flush=True)
        placed = remote_nodes(desc)
        missing = sorted(set(placed) - set(self.daemons))
        if missing:
            raise CommandError(self._missing_daemons(missing, placed))
        return placed

    def _prepare_machines(self, desc: Any, parts: dict[str, list[str]], name: str, build: bool = False,
                          keep: bool = True, entry: Entry | None = None) -> dict[str, dict[str, Any]]:
        """The dataflow's files on each machine of ``parts`` (shipped when needed) and their builds.
        With ``entry``: its start's files (kept in ``entry.shipped``; see ship.prepare_machines)."""
        if self.machinery is None:
            raise CommandError("the coordinator is going down")
        if self.ship is None:
            self.ship = ship.Server(self.machinery)
        # On a loopback endpoint every daemon is on this machine (its commands come over the control socket)
        beside = frozenset(parts) if self.machinery is self.ctl else frozenset(parts) & {self.home}
        pinned = entry.shipped if entry is not None else None
        answers, offer = ship.prepare_machines(self.ship, desc, parts, name, build, self._daemon_call, keep, beside,
                                               pinned=pinned, keep_offer=entry is not None)
        if entry is not None and pinned is None:
            entry.shipped = offer
            if offer is not None:
                self.kept.keep(entry.id, offer)
        for machine, answer in sorted(answers.items()):
            if answer.get("copy"):
                print(f"[dora-zenoh] dataflow '{name}': machine '{machine}' runs from its copy {answer['path']} "
                      f"({answer.get('fetched_bytes', 0)} bytes fetched)", flush=True)
        return answers

    def _build_here(self, desc: Any, nodes: set[str]) -> None:
        """``start --build``: the builds of the nodes this machine runs, in the YAML's folder."""
        from collections import deque

        from dora_zenoh.supervision.build import BuildError, run_builds

        tail: deque[str] = deque(maxlen=15)  # the user sees these in the error; all are in our log

        def echo(line: str) -> None:
            print(line, flush=True)
            tail.append(line)

        try:
            run_builds(desc, echo=echo, only=nodes)
        except BuildError as exc:
            shown = "\n".join(f"  {line}" for line in tail)
            raise CommandError(f"{exc}. Its last lines:\n{shown}") from None

    def _start_recorder(self, entry: Entry, path: Path) -> None:
        """``start --record``: the recorder, a process of its own that every node's start barrier
        waits for and that ends with the dataflow; its output goes to ``recorder.log``."""
        from dora_zenoh.supervision.spawn import recorder_command, recorder_env

        run = entry.run
        log = open(run.log_dir / "recorder.log", "w")  # noqa: SIM115 (the child has its own copy)
        try:
            proc = subprocess.Popen(recorder_command(entry.name, path, run.node_endpoint, run.desc.prefix),
                                    env=recorder_env(run.secret), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, start_new_session=True)
        except OSError as exc:
            print(f"[dora-zenoh] dataflow '{entry.name}': the recorder did not start: {exc}", flush=True)
            return
        finally:
            log.close()
        threading.Thread(target=proc.wait, name=f"dz-rec-{entry.id}", daemon=True).start()  # reaps it

    def cmd_stop(self, target: str, grace: float | None = None, force: bool = False) -> dict[str, Any]:
        try:
            entry = self._find(target, active_only=True)
        except CommandError:
            self._refuse_pending_stop(target)
            raise
        self._stop_entry(entry, grace, force)
        return {"id": entry.id, "name": entry.name, "grace": grace if grace is not None else entry.grace}

    def cmd_restart(self, target: str, grace: float | None = None) -> dict[str, Any]:
        entry = self._find(target)
        if entry.active:
            self._stop_entry(entry, grace, False)
            assert entry.thread is not None
            entry.thread.join((grace if grace is not None else entry.grace) + 30)
            if entry.active:
                raise CommandError(f"dataflow '{entry.name}' did not stop; not restarted")
        return self.cmd_start(entry.path, entry.name, entry.grace, str(entry.run.log_dir.parent),
                              entry.run.options.cpu_latency_us, fail_fast=entry.run.options.fail_fast,
                              secure=entry.run.options.secure)

    def cmd_list(self, target: str | None = None, counts: bool = True) -> dict[str, Any]:
        """The dataflows, or one with its nodes; ``counts=False``: without asking the nodes what they
        sent (a tool that wants the nodes' states only: in a partition's first seconds that query
        waits for the cut-off nodes)."""
        if target is None:
            with self.lock:
                entries = list(self.entries.values())
            return {"dataflows": [self._row(e) for e in entries]}
        entry = self._find(target)
        row = self._row(entry)
        sent = self._sent_counts(entry) if entry.active and counts else {}
        nodes = []
        for state in entry.node_states():
            cpu, rss = entry.usage_of(state)
            node_sent = entry.run.sent.of(state["id"])
            for out, n in sent.get(state["id"], {}).items():
                node_sent[out] = node_sent.get(out, 0) + n
            nodes.append({**state, "cpu": cpu, "rss": rss, "sent": node_sent})
        row["nodes"] = nodes
        row["log_dir"] = str(entry.run.log_dir)
        return {"dataflow": row}

    def cmd_join(self, target: str) -> dict[str, Any]:
        """Where a tool reaches a running dataflow: a closed one lives on a network of its own,
        with its own endpoint and credentials (files only this coordinator's user can read)."""
        entry = self._find(target, active_only=True)
        run = entry.run
        if run.secret is None:
            return {"closed": False, "endpoint": self.endpoint}
        return {"closed": True, "endpoint": run.node_endpoint, "credentials": str(run.secret),
                "observer": str(auth.observer_file(run.secret))}

    def cmd_logs(self, target: str, node: str, tail: int | None = None) -> dict[str, Any]:
        entry = self._find(target)
        if node not in {n.id for n in entry.run.desc.nodes}:
            known = ", ".join(n.id for n in entry.run.desc.nodes)
            raise CommandError(f"dataflow '{entry.name}' has no node '{node}' (nodes: {known})")
        machine = entry.run.desc.node(node).machine
        if machine is not None and machine in entry.remote:
            reply = self._daemon_call(machine, "logs", name=entry.name, node=node, tail=tail,
                                      silent_after=LOGS_SILENCE)
            return {"id": entry.id, "name": entry.name, "lines": reply["lines"], "count": reply["count"],
                    "active": entry.active, "path": f"{machine}:{reply['path']}"}
        lines, count = entry.run.read_log(node, tail)
        return {"id": entry.id, "name": entry.name, "lines": lines, "count": count, "active": entry.active,
                "path": str(entry.run.log_dir / f"log_{node}.txt")}

    def cmd_clean(self) -> dict[str, Any]:
        with self.lock:
            gone = [i for i, e in self.entries.items() if not e.active]
            for i in gone:
                del self.entries[i]
        return {"removed": len(gone)}

    def cmd_down(self, grace: float | None = None) -> dict[str, Any]:
        # `down` stops this machine's daemon afterwards
        return {"pid": os.getpid(), "stopping": self._begin_down(grace), "home": self.home,
                "home_pid": self._home_pid()}

    def _lose(self, machine: str, why: str) -> None:
        super()._lose(machine, why)
        if machine == self.home and self._keeper is not None:
            self._keeper.lost(self._home_pid())

    def _home_pid(self) -> int | None:
        """The pid of this machine's daemon (``--machine-id``), from its reports."""
        return self.pids.get(self.home) if self.home else None

    # -- supervision -------------------------------------------------------------------------------
    def _fail_fast(self, entry: Entry, cause: str) -> None:
        """A node of a fail-fast dataflow failed for good: stop the dataflow on every machine
        (its own machine's part stops itself; the others hear it from here)."""
        with self.lock:
            if entry.fail_fast_cause is not None or not entry.active:
                return
            entry.fail_fast_cause = cause
        print(f"[dora-zenoh] fail-fast: {cause}; stopping dataflow '{entry.name}' on every machine", flush=True)
        self._stop_entry(entry, None, False)

    def _stop_entry(self, entry: Entry, grace: float | None, force: bool) -> None:
        with self.lock:
            if not entry.active:
                return
            entry.status = "stopping"
            entry.stop_requested = True
            entry.stop_args = {"grace": grace, "force": force}
            if entry.thread is None:  # still starting: cmd_start sees it and undoes what it started
                return
        if force:
            threading.Thread(target=entry.run.kill, kwargs={"forced": True}, daemon=True).start()
        else:
            entry.run.stop(grace)
        for part in list(entry.remote.values()):
            self._stop_part(entry, part)

    @staticmethod
    def _check_not_stopped(entry: Entry) -> None:
        """A `stop` that came while the dataflow started (a Ctrl-C on `start`, during a build
        that takes minutes): it must not start, or must end what started (it ran on, unattached,
        and its name stayed taken: helpers' runs, 4 Dec)."""
        if entry.stop_requested:
            raise CommandError("it was stopped while it started")

    def _release_offer(self, entry: Entry) -> None:
        """The dataflow's start offer is over: no longer served, its copies and kept files removed."""
        offer, entry.shipped = entry.shipped, None
        if offer is None:
            return
        if self.ship is not None:
            self.ship.withdraw(offer)
        else:  # taken back at adoption and never served
            offer.discard()

    def _supervise(self, entry: Entry) -> None:
        # A closed dataflow's other machines link to its network through our part, and its dynamic
        # nodes ask our part for their configuration: kept to the end. (An open one's part, with no
        # node of its own to run, closed at once: its dynamic nodes found no dataflow.)
        keep_part = bool(entry.remote) and (entry.run.secret is not None
                                            or any(n.kind == "dynamic" for n in entry.run.desc.nodes))
        result = entry.run.wait(keep_session=keep_part)
        if entry.fail_fast and entry.remote and result.first_failure is not None \
                and result.first_failure.status == "failed":  # our own part stopped itself: now the others
            first = result.first_failure
            self._fail_fast(entry, f"node '{first.id}' on the coordinator's machine {first.detail}")
        # the other machines' parts (a lost one: until its machine is back, or `stop`)
        while not all(p.done or (p.status == "lost" and entry.stop_requested) for p in entry.remote.values()):
            time.sleep(0.1)
        if keep_part:
            entry.run.close_session()
            if entry.run.options.secret is not None:  # an adopted one's, from a daemon
                auth.discard(entry.run.options.secret)
        for cast in (entry.lines, entry.relay):
            if cast is not None:
                cast.close()
        self._release_offer(entry)  # no machine restarts from it any more
        for part in [p for p in entry.remote.values() if p.machine]:  # over: what daemons kept for readers can go
            threading.Thread(target=self._daemon_call, args=(part.machine, "forget"), daemon=True,
                             kwargs={"quiet": True, "timeout": 5.0, "name": entry.name}).start()
        with self.lock:
            entry.result, entry.ended = result, time.time()
            remote = [s for p in entry.remote.values() for s in p.node_states()]
            crashed = [n for n in result.nodes if n.status == "failed"]
            killed = [n for n in result.nodes if n.status == "killed"]
            lost = [s for s in remote if s["status"] in ("failed", "lost")
                    or (s["status"] == "killed" and not entry.stop_requested)]
            if entry.fail_fast_cause is not None:
                entry.status = "failed"
                entry.summary = (f"dataflow '{entry.name}' failed: {entry.fail_fast_cause} (fail-fast: the "
                                 f"dataflow was stopped on every machine)")
                print(f"[dora-zenoh] dataflow '{entry.name}' ({entry.id}) {entry.status}", flush=True)
                self._publish_done(entry)
                return
            # (a part still lost, not one whose daemon came back without it: those nodes ended with it)
            cut_off = {p.machine for p in entry.remote.values() if p.status == "lost"}
            unreached = [s for s in lost if s["status"] == "lost" and s["machine"] in cut_off and entry.stop_requested]
            if unreached and len(unreached) == len(lost) and not crashed:
                # `stop` during a partition: every machine that answered stopped; the unreachable
                # ones get the stop when they report again (MachineWatch._on_daemon_state)
                entry.status = "stopped"
                entry.summary = (f"dataflow '{entry.name}' stopped (logs: {result.log_dir}) but on unreachable "
                                 "machines: " + "; ".join(f"node '{s['id']}' on machine '{s['machine']}' "
                                                          f"{s['detail']}" for s in unreached))
                print(f"[dora-zenoh] dataflow '{entry.name}' ({entry.id}) {entry.status}, but for "
                      f"{', '.join(sorted({s['machine'] for s in unreached}))}", flush=True)
                self._publish_done(entry)
                return
            if lost and not crashed:
                entry.status = "failed"
                entry.summary = "\n".join(f"node '{s['id']}' on machine '{s['machine']}' {s['detail'] or s['status']}"
                                           for s in lost)
                print(f"[dora-zenoh] dataflow '{entry.name}' ({entry.id}) {entry.status}", flush=True)
                self._publish_done(entry)
                return
            if crashed or (killed and not entry.stop_requested):
                entry.status, entry.summary = "failed", result.summary()
            elif entry.stop_requested:
                entry.status = "stopped"
                entry.summary = f"dataflow '{entry.name}' stopped (logs: {result.log_dir})"
                entry.summary += "".join(f"\nnode '{n.id}' {n.detail}" for n in killed)
                entry.summary += "".join(f"\nnode '{s['id']}' on machine '{s['machine']}' {s['detail']}"
                                         for s in remote if s["status"] == "killed" and s["detail"])
            else:
                elsewhere: dict[str, int] = {}
                for state in remote:
                    elsewhere[state["machine"]] = elsewhere.get(state["machine"], 0) + 1
                entry.status, entry.summary = "succeeded", result.summary(elsewhere)
        print(f"[dora-zenoh] dataflow '{entry.name}' ({entry.id}) {entry.status}", flush=True)
        self._publish_done(entry)

    def _publish_done(self, entry: Entry) -> None:
        if self.ctl is not None:
            try:
                self.ctl.put(keys.done_key(entry.name), json.dumps(
                    {"id": entry.id, "name": entry.name, "status": entry.status, "summary": entry.summary}))
            except zenoh.ZError:
                pass

    def _sent_counts(self, entry: Entry) -> dict[str, dict[str, int]]:
        """Ask the entry's live nodes how many messages they sent per output (one query). A
        closed run's nodes answer only on its own network: asked through its runner's session."""
        counts: dict[str, dict[str, int]] = {}
        session = entry.run.session if entry.run.secret is not None else self.session
        if session is None:
            return counts
        selector = keys.stats_key(entry.run.desc.prefix, entry.name, "*")
        # A machine that does not report (a partition) does not answer either: the query would wait
        # its whole timeout for its nodes; those that can answer do so in milliseconds.
        cut_off = any(p.silent for p in entry.remote.values())
        try:
            replies = list(session.get(selector, timeout=0.3 if cut_off else 1.0))
        except zenoh.ZError:  # the run's session closed meanwhile (it ended): no live node to ask
            return counts
        for reply in replies:
            if reply.ok is None:
                continue
            try:
                stats = json.loads(reply.ok.payload.to_bytes())
                # {"sent": {...}, "inputs": ...}; a node of an older release answered {output: count}
                sent = stats.get("sent", stats) if isinstance(stats, dict) else None
                if isinstance(sent, dict):
                    counts[str(reply.ok.key_expr).rsplit("/", 1)[1]] = sent
            except (ValueError, RecursionError):  # whatever another session put there
                continue
        return counts

    def _row(self, entry: Entry) -> dict[str, Any]:
        end = entry.ended or time.time()
        states = entry.node_states()
        status = entry.status  # a running dataflow with a node that failed for good is "degraded"
        if status == "running" and any(s["status"] in ("failed", "lost") for s in states):
            status = "degraded"
        return {"id": entry.id, "name": entry.name, "status": status, "path": entry.path,
                "started": entry.started, "uptime": end - entry.started, "nodes": len(states),
                "running_nodes": sum(1 for s in states if s["pid"]),
                "restarts": sum(s["restarts"] for s in states),
                "cpu": round(sum(entry.usage_of(s)[0] for s in states), 1) if entry.active else 0.0,
                "rss": sum(entry.usage_of(s)[1] for s in states) if entry.active else 0,
                "summary": entry.summary, "fail_fast": entry.fail_fast, "closed": entry.run.secret is not None,
                # nodes a `stop` has not reached yet (their machine is unreachable): `stop` exits 1
                "unreached": [n for p in entry.remote.values() if p.stop_pending for n in p.nodes]}

    def _sampler(self) -> None:
        """CPU% and RSS of every local node's whole process tree, once per SAMPLE_PERIOD (the
        daemons measure theirs and send the figures in their reports)."""
        while not self._shutdown.wait(SAMPLE_PERIOD):
            self._check_silence()
            with self.lock:
                active = [e for e in self.entries.values() if e.active]
            usage = self._usage.sample([{**s, "id": (e.id, s["id"])} for e in active for s in e.run.node_states()])
            for entry in active:
                entry.usage = {node: u for (eid, node), u in usage.items() if eid == entry.id}


def main(endpoint: str | None = None, group: str | None = None, home: str | None = None,
         home_log: Path | None = None) -> int:
    """``dora-zenoh coordinator``: run in the foreground until ``down`` or SIGTERM."""
    return Coordinator(endpoint, group, home, home_log).serve()
