"""The coordinator's view of the other machines: their daemons, connected or lost, and
what each daemon's reports say about the dataflows' parts it runs.

A daemon is connected once it reports, lost when its token goes and no report follows
within TOKEN_GRACE or when it stays silent for REPORT_SILENCE; a lost machine makes its
dataflows degraded, not ended. A daemon that comes back gets its lost nodes started again
per their restart policy, and dataflows an earlier coordinator started are adopted from
the reports.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import zenoh

from dora_zenoh.descriptor.placement import machine_hint, place, placement_of, remote_nodes, unplaced_nodes
from dora_zenoh.errors import CommandError, SecretError
from dora_zenoh.supervision import ship
from dora_zenoh.supervision.entries import Entry, RemotePart
from dora_zenoh.supervision.keptoffers import KeptOffers
from dora_zenoh.supervision.linecast import LineRelay
from dora_zenoh.supervision.restart import RestartRule, next_delay, restarts_after
from dora_zenoh.supervision.run import DataflowRun, RunOptions
from dora_zenoh.wire import auth, keys

# A daemon reports twice a second. One silent this long is lost, whatever its token says: other
# peers pass a token on until their own link to it times out, so the token can outlive a
# partition's start by more than Zenoh's 10 s lease. (A healthy daemon of a machine stalled
# longer than this shows lost, then connected at its next report: being lost ends nothing.)
REPORT_SILENCE = 8.0
# A withdrawn token means lost unless a report arrives within this long (a withdrawal came
# after the daemon had linked again, once a partition healed).
TOKEN_GRACE = 1.2
# How long `stop` waits for a daemon's answer (it answers at once) before it counts the machine
# as not reached: its next report sends the stop again.
STOP_ANSWER = 5.0


class MachineWatch:
    """Mixed into :class:`dora_zenoh.supervision.coordinator.Coordinator`, which sets up these attributes."""

    endpoint: str
    session: zenoh.Session | None
    machinery: zenoh.Session | None  # the daemons' commands, reports and files: the hub, or the control socket
    ctl: zenoh.Session | None  # the control socket's session (the CLI's)
    lock: threading.RLock
    entries: dict[str, Entry]
    daemons: dict[str, float]  # machine id -> when it connected (see _on_daemon)
    labels: dict[str, dict[str, str]]  # machine id -> its daemon's --labels (its reports)
    pids: dict[str, int]  # machine id -> its daemon's pid (its reports)
    _heard: dict[str, float]  # machine -> monotonic time of its last state report
    # run id of a failed start -> (its name, {machine sent `spawn`: whether it got the stop}), until
    # each reports that part ended (or no longer reports it): never adopted meanwhile
    _abandoned: dict[str, tuple[str, dict[str, bool]]]
    _lost_at: dict[str, float]  # machine -> monotonic time it was last lost
    _down_started: bool
    home: str | None  # this machine's id, when `up` started its daemon

    if TYPE_CHECKING:
        def _prepare_machines(self, desc: Any, parts: dict[str, list[str]], name: str, build: bool = False,
                              keep: bool = True, entry: Entry | None = None) -> dict[str, dict[str, Any]]: ...
        def _fail_fast(self, entry: Entry, cause: str) -> None: ...
        kept: KeptOffers
        def _supervise(self, entry: Entry) -> None: ...

    def cmd_machines(self) -> dict[str, Any]:
        """Every machine whose daemon joined this coordinator, connected now or lost: since when,
        how old its last report is, its daemon's pid and labels, and the running dataflows that
        have nodes there (``dora-zenoh machines``)."""
        now, wall = time.monotonic(), time.time()
        with self.lock:
            names = sorted(set(self.daemons) | set(self._lost_at))
            flows: dict[str, list[str]] = {m: [] for m in names}
            nodes = dict.fromkeys(names, 0)
            for entry in self.entries.values():
                for machine, part in entry.remote.items():
                    if entry.active and machine in nodes and not part.done:
                        flows[machine].append(entry.name)
                        nodes[machine] += len(part.nodes)
            rows = [{"machine": m, "status": "connected" if m in self.daemons else "lost",
                     "connected_for": round(wall - self.daemons[m], 1) if m in self.daemons else None,
                     "lost_for": None if m in self.daemons else round(now - self._lost_at[m], 1),
                     "report_age": round(now - self._heard[m], 1) if m in self._heard else None,
                     "pid": self.pids.get(m), "labels": dict(self.labels.get(m, {})), "home": m == self.home,
                     "dataflows": sorted(flows[m]), "nodes": nodes[m]} for m in names]
        return {"machines": rows}

    def _daemon_call(self, machine: str, verb: str, quiet: bool = False, timeout: float = 30.0,
                     silent_after: float | None = None, **args: Any) -> dict[str, Any]:
        """One command to a machine's daemon; CommandError naming the machine (None if ``quiet``).

        ``silent_after``: give up once the machine has not reported for that long (a quick command
        to a machine cut off a moment ago waited until Zenoh closed the link: `logs`, 8.8 s)."""
        try:
            session = self.machinery
            if session is None:
                raise CommandError("the coordinator is going down")
            payload = json.dumps({k: v for k, v in args.items() if v is not None})
            start = time.monotonic()
            replies = session.get(keys.daemon_ctl_key(machine, verb), payload=payload, timeout=timeout)
            for reply in replies if silent_after is None else self._while_heard(replies, machine, verb,
                                                                                   silent_after, start):
                if reply.ok is None:
                    continue
                answer = json.loads(reply.ok.payload.to_bytes())
                if not answer.get("ok"):
                    raise CommandError(answer.get("error", f"machine '{machine}' refused '{verb}'"))
                return answer
            waited = time.monotonic() - start
            silent = time.monotonic() - self._heard.get(machine, start)
            if silent_after is not None and silent > silent_after:  # (the query found no route to it)
                raise _unreported(machine, verb, silent)
            if waited < timeout - 1.0:  # Zenoh ended the query early: the link to that machine closed
                raise CommandError(f"the daemon of machine '{machine}' did not answer '{verb}': the link to it "
                                   f"closed after {waited:.1f} s (is machine '{machine}' reachable?)")
            raise CommandError(f"the daemon of machine '{machine}' did not answer '{verb}' within {timeout:g} s")
        except CommandError:
            if quiet:
                return {}
            raise

    def _while_heard(self, replies: Any, machine: str, verb: str, silent_after: float,
                     start: float) -> Iterator[Any]:
        """The replies of a query to ``machine``, until it has sent no report for ``silent_after`` s
        since the query began (a machine whose link has just come back answers before its reports
        resume: the query gets that long)."""
        while True:
            now, heard = time.monotonic(), self._heard.get(machine, start)
            if now - max(heard, start) > silent_after:
                raise _unreported(machine, verb, now - heard)
            try:
                reply = replies.try_recv()
            except zenoh.ZError:  # the query is over
                return
            if reply is not None:
                yield reply
            else:
                time.sleep(0.01)

    def _relay_lines(self, entry: Entry) -> None:
        """`logs -f` and `start` (attached) follow the entry's nodes on other machines too, whose
        daemons cast their lines on the machines' network (a daemon of this machine casts them on
        the control socket itself)."""
        network, ctl = self.machinery, self.ctl
        placed = [n.id for n in entry.run.desc.nodes if n.machine is not None]
        if network is not None and ctl is not None and network is not ctl and placed:
            entry.relay = LineRelay(ctl, network, entry.name, placed)

    @staticmethod
    def _part_args(entry: Entry) -> dict[str, Any]:
        """What a ``spawn`` on another machine takes from this machine's part: the readers no
        YAML names (a `start --record` recorder, which every node's start barrier waits for), the
        `--cpu-latency-us` request (each machine's CPUs are its own) and, for a closed dataflow,
        its credentials (over the control link, mutual TLS between machines) and where this part
        listens, to link to."""
        run = entry.run
        args: dict[str, Any] = {"readers": list(run.options.extra_readers)} if run.options.extra_readers else {}
        if run.options.cpu_latency_us is not None:
            args["cpu_latency_us"] = run.options.cpu_latency_us
        if run.secret is not None and run.session is not None:
            args.update(credentials=run.secret.read_text(), peers=[run.node_endpoint])
        return args

    def _missing_daemons(self, missing: list[str], placed: dict[str, list[str]]) -> str:
        lines = [f"machine '{m}' (nodes {', '.join(placed[m])}) has no daemon connected to this coordinator"
                 + machine_hint(m, list(self.daemons)) for m in missing]
        known = ", ".join(sorted(self.daemons)) or "none"
        return ("; ".join(lines) + f" (daemons connected: {known}); on that machine run "
                f"`dora-zenoh daemon --machine-id {missing[0]} --coordinator {self.endpoint} --listen ...`")

    @staticmethod
    def _restartable(desc: Any, nodes: list[str]) -> bool:
        return any(desc.node(n).restart_policy != "never" for n in nodes)

    def _on_daemon(self, sample: zenoh.Sample) -> None:
        """A daemon's liveliness token went: lost, unless it reports within TOKEN_GRACE.

        Lost: its token went (Zenoh tells a few ms after the daemon's process dies, its socket
        closing) and no report followed; or no report came for REPORT_SILENCE seconds (a
        partition, a dead machine: the token may be passed on by other peers for longer).
        Connected: a state report came from it since it was lost. Its token coming back is
        not believed: during a partition another peer, whose own link to the daemon had not
        timed out yet, passed it on again (lost, connected, lost in one CI run), and a
        withdrawal once arrived after the daemon had linked again; a report can only come
        from the daemon itself.
        """
        machine = str(sample.key_expr).rsplit("/", 1)[1]
        if sample.kind == zenoh.SampleKind.DELETE:
            threading.Thread(target=self._token_gone, args=(machine, time.monotonic()), daemon=True).start()

    def _token_gone(self, machine: str, at: float) -> None:
        time.sleep(TOKEN_GRACE)
        with self.lock:
            reported = self._heard.get(machine, -1.0) > at
        if not reported:
            self._lose(machine, "its Zenoh link closed")

    def _lose(self, machine: str, why: str) -> None:
        with self.lock:
            self._lost_at[machine] = time.monotonic()
            if self.daemons.pop(machine, None) is None:
                return
            print(f"[dora-zenoh] daemon of machine '{machine}' lost ({why})", flush=True)
            for entry in self.entries.values():
                part = entry.remote.get(machine)
                if part is not None and not part.done:
                    part.status, part.why = "lost", None

    def _check_silence(self) -> None:
        """A connected daemon that sent no report for REPORT_SILENCE seconds is lost, even if
        its token is still seen (it would otherwise show connected until Zenoh's lease)."""
        now = time.monotonic()
        with self.lock:
            silent = [m for m in self.daemons if now - self._heard.get(m, now) > REPORT_SILENCE]
        for machine in silent:
            self._lose(machine, f"no report for {REPORT_SILENCE:g} s")

    def _maybe_connected(self, machine: str) -> None:
        """(Under the lock) heard from since the loss: connected."""
        if machine in self.daemons or self._heard.get(machine, -1.0) <= self._lost_at.get(machine, -2.0):
            return
        self.daemons[machine] = time.time()
        print(f"[dora-zenoh] daemon of machine '{machine}' connected", flush=True)

    def _on_daemon_state(self, sample: zenoh.Sample) -> None:
        """A daemon's report: its nodes' states, and dataflows an earlier coordinator started."""
        try:
            report = json.loads(sample.payload.to_bytes())
            machine = str(report["machine"])
            parts = list(report["parts"])
        except (ValueError, KeyError, TypeError):
            return
        adopt = []
        abandoned: list[str] = []
        fail_fast: list[tuple[Entry, str]] = []
        resend: list[tuple[Entry, RemotePart]] = []
        labels = report.get("labels")
        with self.lock:
            self._heard[machine] = time.monotonic()
            if isinstance(labels, dict):
                self.labels[machine] = {str(k): str(v) for k, v in labels.items()}
            if isinstance(report.get("pid"), int):
                self.pids[machine] = report["pid"]
            self._maybe_connected(machine)
            if machine not in self.daemons:  # not connected (yet): nothing it says counts
                return
            by_id = {e.id: e for e in self.entries.values()}
            for rep in parts:
                entry = by_id.get(rep.get("id"))
                if entry is None:
                    still = self._still_abandoned(machine, rep)
                    if still == "stop":
                        abandoned.append(str(rep.get("id")))
                    elif still is None and rep.get("status") != "ended" and not self._down_started:
                        adopt.append(rep)
                    continue
                part = entry.remote.get(machine)
                if part is None and entry.adopted and rep.get("status") != "ended":
                    # Adopted from another daemon's report: this machine's nodes join the entry
                    # whenever its report arrives (a daemon slower to reach us, or back later).
                    part = entry.remote[machine] = self._remote_part(machine, rep, entry.run.desc)
                if part is None:
                    continue
                part.states = list(rep.get("nodes", []))
                part.log_dir = rep.get("log_dir")
                part.heard = time.monotonic()
                if part.status != "ended":
                    part.status = "ended" if rep.get("status") == "ended" else "running"
                    part.why = None
                if entry.stop_requested and not part.done:  # a stop that did not reach it yet
                    resend.append((entry, part))
                failed = [s for s in part.states if s.get("status") == "failed"]
                if failed and entry.fail_fast and entry.fail_fast_cause is None and not entry.stop_requested:
                    first = failed[0]
                    fail_fast.append((entry, f"node '{first['id']}' on machine '{machine}' "
                                             f"{first.get('detail') or 'failed'}"))
            # A new daemon process for a machine whose part was lost: its nodes died with the old one.
            reported = {rep.get("id") for rep in parts}
            for run_id in [i for i, (_, sent) in self._abandoned.items() if machine in sent and i not in reported]:
                self._forget_abandoned(machine, run_id)  # that failed start's part is gone from there
            respawn = [e for e in self.entries.values() if e.active and not e.stop_requested and machine in e.remote
                       and e.remote[machine].status == "lost" and e.remote[machine].waits and e.id not in reported]
            for entry in respawn:
                entry.remote[machine].status = "respawning"
            # Back without them (its daemon died, a new one runs there): its nodes ended with the old
            # one, for good unless they restart (respawn, above). They used to stay `lost`: the
            # dataflow stayed degraded, and a later `stop` reported it stopped, exit 0.
            for entry in self.entries.values():
                for part in entry.remote.values():
                    if part.machine == machine and part.status == "lost" and entry.id not in reported \
                            and entry not in respawn:
                        part.status, part.stop_delivered = "ended", part.stop_wanted
                        part.states = [{"id": n, "pid": None, "status": "lost", "restarts": part.restarts(n),
                                        "create_time": None, "detail": "ended with its machine's daemon, which "
                                        "died (a new daemon runs there)"} for n in part.nodes]
        for entry, cause in fail_fast:
            self._fail_fast(entry, cause)
        for entry, part in resend:
            self._stop_part(entry, part)
        for run_id in abandoned:
            threading.Thread(target=self._stop_abandoned, args=(machine, run_id), daemon=True).start()
        for rep in adopt:
            threading.Thread(target=self._adopt, args=(machine, rep), daemon=True).start()
        for entry in respawn:
            threading.Thread(target=self._respawn_part, args=(entry, machine), daemon=True).start()

    def _abandon_parts(self, entry: Entry) -> list[str]:
        """A start that failed: stop its parts on other machines that may have started (a
        ``spawn`` was sent, answered or not). A machine that does not answer gets the stop at its
        next report, by run id, and its part is never adopted: the start of a part whose answer
        was lost in a partition used to run on after the failed start, and was adopted as a
        dataflow of 1 of 3 nodes (a helper's run, 4 Dec). The machines not reached."""
        sent = {p.machine: self._stop_run(p.machine, entry.name, id=entry.id, force=True)
                for p in entry.remote.values() if p.spawn_asked}
        if sent:  # a machine that got the stop still reports its part, stopping, for a while: not adopted
            with self.lock:
                self._abandoned[entry.id] = (entry.name, sent)
        return [m for m, delivered in sent.items() if not delivered]

    def _stop_run(self, machine: str, name: str, **args: Any) -> bool:
        """`stop` dataflow ``name`` on a machine (``args``: the daemon's grace, force, and id: a
        run id leaves a later run of that name alone); whether it got it or runs no such thing."""
        try:
            self._daemon_call(machine, "stop", timeout=STOP_ANSWER, name=name, **args)
            return True
        except CommandError as exc:
            return "runs no" in str(exc)  # it has nothing of that name (and id) running any more

    def _still_abandoned(self, machine: str, rep: dict[str, Any]) -> str | None:
        """(Under the lock) whether a reported part belongs to a failed start: "stop" (it has not
        got the stop yet), "stopping" (it has: not to be adopted while it ends), None (it does not,
        or that part ended)."""
        run_id = str(rep.get("id"))
        name, sent = self._abandoned.get(run_id, ("", {}))
        if machine not in sent:
            return None
        if rep.get("status") == "ended":
            self._forget_abandoned(machine, run_id)
            return None
        return "stopping" if sent[machine] else "stop"

    def _forget_abandoned(self, machine: str, run_id: str) -> None:
        """(Under the lock) that failed start's part on ``machine`` ended."""
        name, sent = self._abandoned.get(run_id, ("", {}))
        sent.pop(machine, None)
        if not sent:
            self._abandoned.pop(run_id, None)

    def _stop_abandoned(self, machine: str, run_id: str) -> None:
        with self.lock:
            name, sent = self._abandoned.get(run_id, ("", {}))
            if sent.get(machine) is not False:
                return
        if self._stop_run(machine, name, id=run_id, force=True):
            with self.lock:
                if machine in sent:
                    sent[machine] = True
            print(f"[dora-zenoh] machine '{machine}' is back: stopped what it had started of dataflow '{name}' "
                  f"({run_id}), whose start failed", flush=True)

    def _stop_part(self, entry: Entry, part: RemotePart) -> None:
        """Send `stop` to a part's daemon (in the background) until it answers: a machine cut off
        when `stop` came gets it at its next report, and its nodes end instead of running on
        for good (they would also keep the dataflow's name taken on that machine)."""
        with self.lock:
            if part.done or part.stop_sending or part.stop_delivered:
                return
            part.stop_wanted = part.stop_sending = True
        threading.Thread(target=self._send_stop, args=(entry, part), daemon=True).start()

    def _send_stop(self, entry: Entry, part: RemotePart) -> None:
        delivered = self._stop_run(part.machine, entry.name, **entry.stop_args)
        with self.lock:
            part.stop_sending, part.stop_delivered = False, delivered
            if delivered and not entry.active:
                entry.summary += f"\nmachine '{part.machine}' got the stop once it was back"
        if delivered and not entry.active:
            print(f"[dora-zenoh] dataflow '{entry.name}' ({entry.id}): machine '{part.machine}' is back and got "
                  "the stop", flush=True)

    def _refuse_pending_stop(self, target: str) -> None:
        """`stop` of a dataflow that ended but for unreachable machines: say so (CommandError)."""
        with self.lock:
            entries = [e for e in self.entries.values() if target in (e.id, e.name) and not e.active]
        for entry in reversed(entries):
            pending = [p for p in entry.remote.values() if p.stop_pending]
            if pending:
                raise CommandError(
                    f"dataflow '{entry.name}' ({entry.id}) is stopped but for machine(s) "
                    f"{', '.join(sorted({p.machine for p in pending}))}, unreachable: their nodes "
                    f"({', '.join(n for p in pending for n in p.nodes)}) get the stop as soon as their "
                    "daemon reports again")

    def _respawn_part(self, entry: Entry, machine: str) -> None:
        """A lost machine's daemon is back: restart the nodes whose ``restart_policy`` allows it
        (``on-failure``, ``always``: losing the machine is a failure); the others stay lost."""
        part = entry.remote[machine]
        desc = entry.run.desc
        again = [n for n in part.nodes if restarts_after(RestartRule.of(desc.node(n)), "failed", part.restarts(n))]
        if not again:
            with self.lock:
                part.status, part.waits = "lost", False
                part.why = f"is gone: machine '{machine}' is back, with a new daemon that does not run it"
            return
        # The same rule as a restart on one machine (supervision.restart): each node's restart_delay,
        # doubled per restart done; the machine's nodes start together, after the longest of them.
        delay = max(next_delay(RestartRule.of(desc.node(n)), part.restarts(n)) for n in again)
        deadline = part.restart_at = time.monotonic() + delay
        for n in again:
            rule = RestartRule.of(desc.node(n))
            limit = f" of {rule.max_restarts}" if rule.max_restarts is not None else ""
            print(f"[dora-zenoh] node '{n}' of dataflow '{entry.name}' was lost with machine '{machine}'; "
                  f"restarting in {delay:g} s (restart {part.restarts(n) + 1}{limit}, restart_policy: "
                  f"{rule.policy})", flush=True)
        while time.monotonic() < deadline:
            if entry.stop_requested or not entry.active or self._down_started:
                with self.lock:
                    part.status, part.waits = "lost", False
                return
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        with self.lock:
            if machine not in self.daemons:  # lost again while waiting: the next daemon back starts over
                part.status = "lost"
                return
        try:
            unknown = entry.shipped is None and entry.adopted  # our predecessor's start, files not kept
            self._prepare_machines(entry.run.desc, {machine: again}, entry.name, entry=entry)
            self._say_changed_since_start(entry, machine, again, unknown)
            self._daemon_call(machine, "spawn", path=entry.path, name=entry.name, id=entry.id, nodes=again,
                              grace=entry.grace, fail_fast=entry.run.options.fail_fast or None,
                              restarts={n: part.restarts(n) + 1 for n in again},
                              placement=placement_of(desc) or None, **self._part_args(entry))
        except CommandError as exc:
            print(f"[dora-zenoh] could not restart dataflow '{entry.name}' on machine '{machine}': {exc}",
                  flush=True)
            with self.lock:
                part.status, part.waits = "lost", False  # for good: no retry at every report
            return
        print(f"[dora-zenoh] restarted {', '.join(again)} of dataflow '{entry.name}' on machine '{machine}'",
              flush=True)
        with self.lock:
            gone = [n for n in part.nodes if n not in again]
            part.states = [{"id": n, "pid": None, "status": "starting", "restarts": part.restarts(n) + 1,
                            "create_time": None, "detail": None} for n in again]
            part.nodes, part.status, part.heard = again, "running", time.monotonic()
            if gone:  # nodes that stay lost: a part of their own, never reported again
                entry.remote[f"{machine} (lost)"] = RemotePart(machine, gone, status="lost")

    @staticmethod
    def _say_changed_since_start(entry: Entry, machine: str, nodes: list[str], unknown: bool = False) -> None:
        """Say which files a machine's restarted nodes do not run as they are now: they run the
        start's (ship.prepare_machines, ``pinned``), as the other machines' nodes do. ``unknown``:
        the start's files were not kept (keptoffers), so they run the folder as it is now."""
        if unknown and entry.shipped is not None:
            print(f"[dora-zenoh] dataflow '{entry.name}': {', '.join(nodes)} on machine '{machine}' run the files "
                  f"as they are now in {entry.shipped.root}: the files the dataflow started with were not kept "
                  "when this coordinator was started again (if you changed them since, stop and start the "
                  "dataflow)", flush=True)
            return
        changed = ship.changed_since(entry.shipped) if entry.shipped is not None else []
        if changed:
            print(f"[dora-zenoh] dataflow '{entry.name}': {', '.join(nodes)} on machine '{machine}' run the files "
                  f"the dataflow started with, as its other nodes do; changed since: {', '.join(changed)} (stop "
                  "and start the dataflow to run the new ones)", flush=True)

    def _join_adopted(self, machine: str, rep: dict[str, Any]) -> bool:
        """Whether the dataflow of ``rep`` is adopted already (this machine's part then joins it)."""
        with self.lock:
            for entry in self.entries.values():
                if entry.id == rep["id"]:
                    if machine not in entry.remote or entry.remote[machine].status == "lost":
                        entry.remote[machine] = self._remote_part(machine, rep, entry.run.desc)
                    return True
        return False

    @staticmethod
    def _drop(run: DataflowRun) -> None:
        """A run started for nothing (a closed dataflow adopted twice at once): it has no node."""
        run.wait()
        if run.options.secret is not None:
            auth.discard(run.options.secret)

    def _remote_part(self, machine: str, rep: dict[str, Any], desc: Any) -> RemotePart:
        """The part of an adopted dataflow that one daemon's report describes."""
        ids = [s["id"] for s in rep["nodes"]]
        return RemotePart(machine, ids, list(rep["nodes"]), "running", rep.get("log_dir"),
                          waits=self._restartable(desc, ids))

    def _expect_parts(self, entry: Entry, reporter: str) -> None:
        """An adopted dataflow's nodes that ``reporter``'s report does not hold: those placed on
        other machines are lost until their daemon reports them (then they join; a daemon that
        reports without them lost them: their restart policy applies, as for a daemon that came
        back); those the earlier coordinator ran itself ended with it. None of them vanishes."""
        desc = entry.run.desc
        for other, ids in remote_nodes(desc).items():
            if other != reporter:
                entry.remote[other] = RemotePart(other, ids, status="lost", waits=self._restartable(desc, ids),
                                                 why=f"is not reported by machine '{other}' yet (its daemon is "
                                                     "not connected, or it ran it no more)")
        gone = unplaced_nodes(desc)
        if gone:
            entry.remote[""] = RemotePart("", gone, [
                {"id": n, "pid": None, "status": "lost", "restarts": 0, "create_time": None,
                 "detail": "ended with the earlier coordinator, which ran it"} for n in gone], status="ended")

    def _adopt(self, machine: str, rep: dict[str, Any]) -> None:
        """A dataflow still running on a daemon that this coordinator did not start: take it back
        (``list`` shows it, ``stop`` and ``logs`` work). Its nodes on the coordinator's machine died
        with the earlier coordinator; the other machines' nodes never stopped. A closed one's
        network is joined again with the credentials the daemon kept (asked over the control link)."""
        from dora_zenoh.descriptor import DescriptorError, load_descriptor

        if self._join_adopted(machine, rep):
            return
        try:
            desc = load_descriptor(rep["path"])
            place(desc, dict(rep.get("placement") or {}))  # where its labelled nodes went
            # The start's options come back from the daemons' reports (each daemon got them with its
            # `spawn`): this coordinator keeps no state of its own (but the start's files: keptoffers),
            # and the daemons are what outlived the old one. The YAML (read again from rep["path"])
            # gives the restart policies.
            # (its dynamic nodes are the coordinator's machine's: our part answers for them again)
            dynamic = {n.id for n in desc.nodes if n.kind == "dynamic"}
            opts = RunOptions(name=rep["name"], only=dynamic, part=True, adopted=True, echo=False,
                              endpoint=self.endpoint, fail_fast=bool(rep.get("fail_fast")))
            if rep.get("closed"):
                answer = self._daemon_call(machine, "credentials", name=rep["name"])
                opts.secure, opts.peers = True, (str(answer["endpoint"]),)
                opts.secret = auth.keep_secret(str(answer["credentials"]))
        except (DescriptorError, OSError, KeyError, TypeError, ValueError, CommandError, SecretError) as exc:
            print(f"[dora-zenoh] cannot adopt dataflow '{rep['name']}' running on machine '{machine}': "
                  f"{exc}", flush=True)
            return
        run = DataflowRun(desc, opts, run_id=rep["id"])  # its log folder is the one the start named
        if opts.secret is not None or dynamic:
            try:
                run.start()  # no node of its own: our part of its network, for tools, vouching, dynamic nodes
            except Exception as exc:
                if opts.secret is not None:
                    auth.discard(opts.secret)
                print(f"[dora-zenoh] cannot join the network of dataflow '{rep['name']}' (machine "
                      f"'{machine}'): {exc}", flush=True)
                return
        with self.lock:
            if self._join_adopted(machine, rep):  # another daemon's report got there first meanwhile
                self._drop(run)
                return
            entry = Entry(run, rep["path"], float(rep.get("grace", 10.0)), adopted=True)
            self._expect_parts(entry, machine)
            try:  # its uptime goes on (the daemon's uptime of its part: no wall clock of another machine)
                entry.started -= max(0.0, float(rep.get("uptime") or 0.0))
            except (TypeError, ValueError):
                pass
            entry.remote[machine] = self._remote_part(machine, rep, desc)
            entry.shipped = self.kept.take_back(entry.id)  # its start's files, if our predecessor kept them
            self.entries[entry.id] = entry
        self._relay_lines(entry)
        print(f"[dora-zenoh] adopted dataflow '{entry.name}' ({entry.id}) running on machine '{machine}'",
              flush=True)
        entry.thread = threading.Thread(target=self._supervise, args=(entry,), name=f"dz-{entry.id}", daemon=True)
        entry.thread.start()


def _unreported(machine: str, verb: str, silent: float) -> CommandError:
    return CommandError(f"the daemon of machine '{machine}' did not answer '{verb}': it has not reported for "
                        f"{silent:.1f} s (is machine '{machine}' reachable?)")
