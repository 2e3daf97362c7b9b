"""What a node learns about the other processes of its dataflow, and what it believes.

Liveliness tokens say which nodes are up (the start barrier waits for them) and which
went away; ``exited``/``stop`` tokens end inputs or the node, but any Zenoh session can
declare a token, so those are believed only once the runner confirms them (``_believe``).
A source that is gone has its inputs closed once what it sent has landed, counting what
never arrived from the runner's facts when its end-of-stream notice did not come.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zenoh

from dora_zenoh import settings
from dora_zenoh.console import note, warn
from dora_zenoh.node import replay, shutdown
from dora_zenoh.node.end_of_stream import GRACE_MARGIN
from dora_zenoh.node.events import STOP_MANUAL
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys, stranded

if TYPE_CHECKING:
    from dora_zenoh.node.inputs import InputQueue
    from dora_zenoh.node.supervisor import SupervisorWatch
    from dora_zenoh.wire.contract import NodeConfig

# How long a node asks the runner to confirm an `exited`/`stop` token before it says it ignores
# it (a `stop` token: asked about until the dataflow's grace period would end, see _confirm).
FACT_PATIENCE = 3.0
STOP_TOKEN_POLL = 1.0  # seconds between asks about a stop token still there past the patience
_PER_NODE = frozenset({"node", "exited", "sent"})  # token kinds that name a node (keys.live_root)
SENT_PATIENCE = 2.0  # seconds a reader waits for an ended source's sent tokens (see _close_counted_remote)


class PeerWatch:
    """Mixed into :class:`dora_zenoh.node.node.Node`, which sets up these attributes."""

    _cfg: NodeConfig
    _dataflow: str
    node_id: str
    _session: zenoh.Session
    _closed: bool
    _state: threading.Condition
    _alive: set[str]
    _exited: set[str]
    _peers: set[str]
    _checking: set[tuple[str, str]]
    _stop_token: bool  # a `stop` token is declared (by the runner, or forged)
    _gone_forged: set[str]
    _gate_open: bool  # our runner's start gate (supervision.startgate) is open
    _stopped: bool
    _link_lost: set[str]  # sources whose link closed while they ran, until their token is back
    _held_by: frozenset[str]  # readers whose put may hold ours (BLOCK)
    _held_gone: set[str]  # of those, the ones whose token went away
    _stranded_port: int | None  # our listener's port
    _restartable: set[str | None]
    _helpers: shutdown.Helpers
    _supervisor: SupervisorWatch
    _live_root: str
    _data_inputs: list[InputQueue]
    _eos_counts: dict[str, dict[str, dict[str, Any]]]
    _eos_seen: dict[str, str]
    _recover_ids: set[str]
    _sent_counts: dict[str, dict[str, int]]
    # (source node, output) -> the input whose source's count came after it was closed (see
    # _close_counted_remote): counted when the sent token arrives
    _late_counts: dict[tuple[str, str], InputQueue]

    if TYPE_CHECKING:
        def _request_stop(self, cause: str = STOP_MANUAL) -> None: ...
        def _leaving(self) -> bool: ...

    def _on_live(self, sample: zenoh.Sample) -> None:
        what = str(sample.key_expr)[len(self._live_root):]
        put = sample.kind == zenoh.SampleKind.PUT
        kind, _, name = what.partition("/")
        if kind in _PER_NODE and name.partition("/")[0] not in self._peers:
            return  # a node we neither read from nor send to (see Node.__init__)
        if kind == "node":
            if put:
                with self._state:
                    self._alive.add(name)
                    self._state.notify_all()
                    back = name in self._held_gone
                    self._held_gone.discard(name)
                if self._link_lost:
                    self._link_back(name)
                if back and self._stranded_port is not None:
                    self._helpers.start(self._close_stranded, name, name="dora-zenoh-stranded")
            else:  # on a thread of ours: a Zenoh callback must not wait for a query
                if name in self._held_by:
                    with self._state:
                        self._held_gone.add(name)
                self._helpers.start(self._on_node_gone, name, str(sample.key_expr), name="dora-zenoh-gone")
        elif kind == "sent" and put:  # keys.sent_token: sent/<node>/<output>/<count>
            node, _, rest = name.partition("/")
            output, _, count = rest.rpartition("/")
            if count.isdigit():
                known = self._sent_counts.setdefault(node, {})
                known[output] = max(known.get(output, 0), int(count))
                late = self._late_counts.pop((node, output), None)
                if late is not None:  # on a thread of ours: it logs
                    self._helpers.start(late.hint_sent, known[output], self._lost_logger(late.id, f"{node}/{output}"),
                                        name="dora-zenoh-count")
        elif kind == "exited" and put:
            self._believe("exited", name, lambda: self._on_exited(name))
        elif kind == "ready" and put and self._cfg.start_gate and name == self._cfg.runner_zid:
            self._believe("ready", name, self._gate_opened)
        elif kind == "stop":
            self._stop_token = put  # (another session's withdrawal of a forged one shows as gone too)
            if put:
                self._believe("stop", "", self._request_stop)
        elif kind == "runner" and self._cfg.supervised:
            self._supervisor.token(put)  # stops us if the supervisor died, not if it is paused

    def _on_node_gone(self, name: str, token: str) -> None:
        """A node's token went away: believed once Zenoh no longer knows the token at all.

        Another session that declares the same token and undeclares it can make Zenoh
        report the token gone while the node's own is still there; asking for the live
        tokens tells them apart.
        """
        try:
            replies = shutdown.replies(self._session.liveliness().get(token, timeout=1.0), 1.0, self._leaving)
            if any(reply.ok is not None for reply in replies):
                if name not in self._gone_forged:
                    self._gone_forged.add(name)
                    warn(f"node '{self.node_id}': ignored a report that node '{name}' is gone: its token is "
                         "still there (another Zenoh session declared and withdrew the same token)")
                return
        except zenoh.ZError:  # our session is closing
            return
        with self._state:
            self._alive.discard(name)
            self._state.notify_all()
        if name in self._restartable or not any(q.source_node == name for q in self._data_inputs):
            return
        if name not in self._eos_seen and self._still_running(name):
            return  # our link to it closed (its lease ran out): its exited token closes its inputs
        self._close_from(name, include_stdout=False)  # gone: after its notice, or crashed

    def _still_running(self, name: str) -> bool:
        """Whether the runner says node ``name``'s process still runs although its token is gone here.

        That is a link that closed, not an exit: this process was paused or starved past Zenoh's
        lease (10 s), and Zenoh dials the source again. Its inputs stay open: closed at the token's
        loss, they took 10 s more of its data after the link was back and then lost the rest of its
        stream uncounted (4 Dec: 299-519 of 6,000). What it sent meanwhile is a gap in its sequence
        numbers, counted when data comes again, and the runner's exited token ends the inputs.
        """
        if not self._cfg.runner_zid:
            return False
        # Our link to the runner closed too if we were the one paused: it is dialed again at once
        deadline = time.monotonic() + FACT_PATIENCE
        while (facts := self._runner_facts()) is None and time.monotonic() < deadline and not self._closed:
            time.sleep(0.1)
        running = (facts or {}).get("running")
        if not isinstance(running, list) or name not in running:
            return False  # exited, or no answer: close as for a crash
        with self._state:  # (a crash not reaped yet looks the same: its exited token follows)
            self._link_lost.add(name)
            back = name in self._alive
        if back:  # its token came back while we asked
            self._link_back(name)
        return True

    def _link_back(self, name: str) -> None:
        """Node ``name``'s token is here again after :meth:`_still_running` kept its inputs open."""
        with self._state:
            if name not in self._link_lost:
                return
            self._link_lost.discard(name)
        # (The sender's side too: while a put of that node waits for a paused block reader, its Zenoh
        # sends nothing else, and its other readers' links time out as well: docs/design/zenoh-runtime.md.)
        warn(f"node '{self.node_id}': its link to node '{name}' closed while that node ran (this process, or "
             f"'{name}', stalled past Zenoh's 10 s lease: paused, starved, or '{name}' held back by a paused "
             "queue_policy: block reader) and is back; what it sent meanwhile is counted as lost")

    def _close_stranded(self, name: str) -> None:
        """Reader ``name`` linked again after its link closed: if Zenoh kept a link open that it
        no longer sends on (it can, when a put that waited for this reader gave up just as the
        reader dialed again: see dora_zenoh.wire.stranded), shut it down, so that the reader
        dials again and data resumes. Before (5 Dec), that reader got nothing more from us,
        for good, in 1 run of 9-15 of test_trust -k paused_past_its_lease."""
        assert self._stranded_port is not None
        closed = stranded.close_stranded(self._session, self._stranded_port, stop=self._leaving)
        if closed:
            warn(f"node '{self.node_id}': closed its link(s) from {', '.join(closed)}, which Zenoh kept open but "
                 f"no longer sent on after node '{name}' linked again (a fault of Zenoh 1.10 when a put that "
                 "waited for a reader gives up); the reader dials again")

    def _on_exited(self, name: str) -> None:
        with self._state:
            self._exited.add(name)
            self._state.notify_all()
        self._close_from(name, include_stdout=True)

    def _believe(self, kind: str, name: str, act: Callable[[], None]) -> None:
        """Act on an ``exited``/``stop``/``ready`` token once the runner confirms it.

        Any Zenoh session can declare a token; Zenoh does not say whose it is. The runner
        gave us its session id (``runner_zid``), and a query reply names the session that
        sent it (``Reply.replier_id``): the fact is believed when the runner's own
        ``facts`` queryable says so. Asked on a thread of ours (a Zenoh callback must
        not wait); a token unconfirmed after FACT_PATIENCE seconds is logged as ignored.
        A ``stop`` token is asked about until the grace period would end: a runner slow to
        answer (after a link outage, under load: its node was killed at the end of that
        period) must not cost a graceful stop. A node that no runner started believes
        tokens as they come.
        """
        runner = self._cfg.runner_zid
        if not runner:
            act()
            return
        with self._state:
            if (kind, name) in self._checking:
                return
            self._checking.add((kind, name))
        self._helpers.start(self._confirm, kind, name, act, runner, name="dora-zenoh-confirm")

    def _confirm(self, kind: str, name: str, act: Callable[[], None], runner: str) -> None:
        selector = keys.facts_key(self._cfg.prefix, self._dataflow)
        start = time.monotonic()
        # a stop token: one at most in flight; an exited one per name, which another session can forge
        deadline = start + (max(FACT_PATIENCE, _grace() - GRACE_MARGIN) if kind == "stop" else FACT_PATIENCE)
        # A stop token is asked about, more slowly, for as long as it is there, and a ready one until
        # the start barrier ends: the runner's own has the same key, and while a forged one is held
        # Zenoh announces no second one (a forged token held past the asking made the real stop go
        # unheard: nodes killed at the grace's end).
        impostors: set[str] = set()
        said = False

        def say() -> None:
            extra = f" (answers from other sessions ignored: {', '.join(sorted(impostors))})" if impostors else ""
            more = f"; asking until {deadline - start:g} s" if time.monotonic() < deadline else ""
            warn(f"node '{self.node_id}': ignored the '{self._what(kind, name)}' token: the runner (session "
                 f"{runner}) does not confirm it within {FACT_PATIENCE:g} s, so another Zenoh session may have "
                 f"declared it{extra}{more}")

        try:
            while (time.monotonic() < deadline or self._still_held(kind)) and not self._closed:
                if time.monotonic() >= deadline:
                    time.sleep(STOP_TOKEN_POLL)  # past the patience: a slower look while it stays
                for reply in shutdown.replies(_ask_every_runner(self._session, selector), 1.0, self._leaving):
                    if reply.ok is None:
                        continue
                    if _replier(reply) != runner:
                        impostors.add(_replier(reply))
                        continue
                    facts, problem = wire.load_json(reply.ok.payload.to_bytes())
                    if problem is None and isinstance(facts, dict) and _confirms(facts, kind, name):
                        if said:
                            note(f"node '{self.node_id}': the runner confirmed the '{self._what(kind, name)}' "
                                 f"token after {time.monotonic() - start:.1f} s: acting on it")
                        act()
                        return
                if not said and time.monotonic() - start >= FACT_PATIENCE and not self._closed:
                    said = True
                    say()
                time.sleep(0.1)
        except zenoh.ZError:  # our session is closing
            return
        finally:
            with self._state:
                self._checking.discard((kind, name))
        if not said and not self._closed:
            say()

    def _still_held(self, kind: str) -> bool:
        """Whether a ``stop`` or ``ready`` token is still worth asking about (see _confirm)."""
        if kind == "stop":
            return self._stop_token
        return kind == "ready" and not self._gate_open and not self._stopped

    @staticmethod
    def _what(kind: str, name: str) -> str:
        return "stop" if kind == "stop" else f"{kind}/{name}"

    def _gate_opened(self) -> None:
        """Our runner says every node it started is ready: the start barrier may end."""
        with self._state:
            self._gate_open = True
            self._state.notify_all()

    def _close_from(self, node: str, include_stdout: bool) -> None:
        """``node`` is gone: close its inputs once what it sent before has landed.

        "Landed" means: its liveliness token is gone too (its link closes after its last
        message on that link) and nothing arrived for a moment. The runner's ``exited``
        notice comes over another link and can overtake the node's last messages.
        """
        def link_closed() -> bool:
            return node not in self._alive

        closing = [q for q in self._data_inputs if q.source_node == node and (include_stdout or not q.stdout)]
        recovering = [q for q in closing if q.id in self._recover_ids and not q.closed]
        if recovering and node in self._restartable:
            # A source on another machine ended for good: count what never came (on a thread of
            # ours: it may wait a moment for the source's sent tokens). See _close_counted_remote.
            self._helpers.start(self._close_counted_remote, node, closing, recovering, link_closed,
                                name="dora-zenoh-count")
            return
        if any(q.expect is None and not q.closed for q in closing) and self._cfg.runner_zid \
                and node not in self._restartable:
            # Its notice did not reach us (it gave up waiting for us): ask the runner how many
            # it sent, so that what never came is counted. On a thread: we are in a callback.
            self._helpers.start(self._close_counted, node, closing, link_closed, name="dora-zenoh-count")
            return
        for q in closing:
            q.close_when_quiet(ready=link_closed)

    def _close_counted(self, node: str, closing: list[InputQueue], ready: Callable[[], bool]) -> None:
        try:
            sent = (self._runner_facts() or {}).get("sent", {}).get(node, {})
            for q in closing:
                total = sent.get(q.source_output) if isinstance(sent, dict) else None
                if total.__class__ is int:
                    q.hint_total(total)
        finally:
            for q in closing:
                q.close_when_quiet(ready=ready)

    def _close_counted_remote(self, node: str, closing: list[InputQueue], recovering: list[InputQueue],
                              ready: Callable[[], bool]) -> None:
        """How many the source's processes sent in all, per output: from their end-of-stream
        notices, or from its supervisor's ``sent`` tokens when a notice did not reach us (the
        source ended while the link was down; its own machine's supervisor got the notice, and
        a token reaches us once the link is back). What never arrived is counted and logged
        once when the input closes, or when a late count comes (InputQueue.hint_sent)."""
        try:
            # its supervisor declares the sent tokens just before its exited token: they are here,
            # or on the way behind it (bounded wait; later ones are counted when they come: _late_counts)
            deadline = time.monotonic() + SENT_PATIENCE
            while not all(q.source_output in self._sent_counts.get(node, {}) for q in recovering) \
                    and time.monotonic() < deadline and not self._closed:
                time.sleep(0.05)
            totals: dict[str, int] = dict(self._sent_counts.get(node, {}))
            noticed: dict[str, int] = {}
            for outputs in self._eos_counts.get(node, {}).values():
                for out, n in outputs.items():
                    if n.__class__ is int:
                        noticed[out] = noticed.get(out, 0) + n
            for out, n in noticed.items():
                totals[out] = max(totals.get(out, 0), n)
            for q in recovering:
                output = q.source_output or ""
                total = totals.get(output)
                if total is None:
                    # Its count is late (links coming back after an outage): never silent, counted when it comes.
                    self._late_counts[(node, output)] = q
                    warn(f"node '{self.node_id}': input '{q.id}' closes: {node}/{output} ended on another "
                         f"machine, and how many it sent has not reached this node within {SENT_PATIENCE:g} s; "
                         "what never arrived is counted and logged when that count comes")
                    total = self._sent_counts.get(node, {}).get(output)  # it came meanwhile: ours to count
                    if total is None or self._late_counts.pop((node, output), None) is not q:
                        continue
                q.hint_sent(total, self._lost_logger(q.id, f"{node}/{output}"))
        finally:
            for q in closing:
                q.close_when_quiet(ready=ready)

    def _report_late_counts(self) -> None:
        """At the node's end: inputs whose source's count never came (see _close_counted_remote)
        are said, with what did arrive, rather than nothing at all."""
        for (node, output), q in sorted(self._late_counts.items(), key=lambda item: item[0]):
            if self._late_counts.pop((node, output), None) is q:
                warn(f"node '{self.node_id}': input '{q.id}': how many messages {node}/{output} sent never reached "
                     f"this node (its machine's supervisor did not say before this node ended); {q.received} "
                     "arrived, and whether any were lost is unknown")

    def _lost_logger(self, input_id: str, source: str) -> Callable[[int], None]:
        """What an input calls with how many never arrived from a source that ended (logged once)."""
        def log(count: int) -> None:
            warn(replay.ended_message(self.node_id, input_id, source, count))
        return log

    def _runner_facts(self) -> dict | None:
        """The runner's ``facts`` (see ``_believe``), from the runner's own session only."""
        runner = self._cfg.runner_zid
        try:
            handler = _ask_every_runner(self._session, keys.facts_key(self._cfg.prefix, self._dataflow))
            for reply in shutdown.replies(handler, 1.0, self._leaving):
                if reply.ok is not None and _replier(reply) == runner:
                    facts, problem = wire.load_json(reply.ok.payload.to_bytes())
                    if problem is None and isinstance(facts, dict):
                        return facts
        except zenoh.ZError:
            pass
        return None


def _confirms(facts: dict, kind: str, name: str) -> bool:
    """Whether the runner's facts stand by the ``kind`` token (``stop``, ``ready``, ``exited/name``)."""
    if kind in ("stop", "ready"):
        return facts.get(kind) is True
    return name in (facts.get("exited") or ())


def _grace() -> float:
    """The dataflow's grace period after STOP, as the runner set it (10 s when unknown)."""
    grace = settings.STOP_GRACE.get_or_default(then="using 10 s")
    return 10.0 if grace is None else grace


def _ask_every_runner(session: zenoh.Session, selector: str) -> Any:
    """A query of the ``facts`` key that every runner answers, each with its own reply.

    Every machine's part of a dataflow has a runner answering on the same key, and Zenoh's
    default consolidation keeps one reply per key (the last to arrive): a node then saw only the
    far machine's runner, took it for an impostor, ignored its own runner's ``stop`` and was
    killed at the end of the grace period on every ``stop`` across machines.
    """
    return session.get(selector, timeout=1.0, consolidation=zenoh.ConsolidationMode.NONE)


def _replier(reply: zenoh.Reply) -> str:
    """The session id of whoever sent a query reply (Zenoh fills it in, not the replier's code)."""
    who = reply.replier_id
    return str(who.zid) if who is not None else ""
