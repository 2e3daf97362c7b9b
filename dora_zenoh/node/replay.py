"""Outputs read by a ``queue_policy: block`` reader on another machine survive a link outage.

A link between machines that goes down loses what was queued on it once Zenoh closes it
(its lease, or TCP giving up), and a ``BLOCK`` publisher does not hold messages for a peer it
has lost. For those outputs (and only those: a same-machine reader never needs it) the
sender uses Zenoh's advanced publisher, which keeps its last ``$DORA_ZENOH_REPLAY_MESSAGES``
messages (fewer when ``$DORA_ZENOH_REPLAY_BYTES`` holds fewer) in a cache and announces its
last sequence number in a heartbeat; the remote block reader uses Zenoh's advanced
subscriber, which sees a gap (a jump, or a heartbeat ahead of what it has: a silent tail),
fetches the missing range from the cache, and delivers in order, holding later messages
meanwhile. Zenoh's recovery can give up on a range that the cache still holds (see
:class:`CacheRepair`), so a reader that reads from a FIFO channel asks the cache once more
for any gap before it counts it. What the cache no longer had is a *miss*: logged here, and
counted in the input's drops by the gap it leaves in our own sequence numbers
(``InputQueue.put``). Why Zenoh's and not our own: docs/design/outage.md.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import zenoh
import zenoh.ext as zext

from dora_zenoh import settings
from dora_zenoh.console import note, warn
from dora_zenoh.node.fifo import while_emptying
from dora_zenoh.node.inputs import sample_seq
from dora_zenoh.wire.tally import SentTally

# Seconds between heartbeats of a replayed output (one tiny message each): how soon a reader
# notices a tail it never got once the link is back.
HEARTBEAT = 0.5
# A replayed output's priority. Zenoh's heartbeat (and its replies from the cache) go at
# priority DATA: on the same queue as a BLOCK put waiting for room, a heartbeat stalled Zenoh's
# sending until it closed the link 5 s later, losing what was queued (docs/machines.md).
PRIORITY = zenoh.Priority.DATA_HIGH
# Seconds a reader asks its sender's cache for a gap before it counts it (see CacheRepair):
# its node's thread serves nothing else meanwhile.
REPAIR_PATIENCE = 3.0
_NONE = zenoh.ConsolidationMode.NONE  # every sample the cache holds: they all have the output's key
_ANY_KEY = zenoh.ReplyKeyExpr.ANY  # the cache answers on the output's key, not on the one asked


def bound() -> int:
    """Messages kept per replayed output (``$DORA_ZENOH_REPLAY_MESSAGES``)."""
    return settings.REPLAY_MESSAGES.get_or_default()  # a bad value must not stop the node


def kept_for(size: int, messages: int, max_bytes: int) -> int:
    """How many messages of ``size`` bytes a cache of ``messages`` messages and ``max_bytes``
    bytes keeps (at least one; ``max_bytes`` 0: no bytes limit)."""
    if max_bytes <= 0 or size <= 0:
        return messages
    return max(1, min(messages, max_bytes // size))


class ReplayPublisher:
    """The publisher of a replayed output, and a plain one on the same key for its matching status.

    Zenoh's cache counts messages only. For the bytes bound (``$DORA_ZENOH_REPLAY_BYTES``) the
    advanced publisher is declared at the first ``put`` with as many messages as the bound holds
    of that one, and declared again, keeping fewer, when a larger message would let the cache
    outgrow the bound: an output whose first message was small then kept 256 messages of 4 MiB
    (1 GiB), and every send paid for fresh memory (docs/machines.md). The new cache starts
    empty: a reader cut off at that moment recovers only what it kept, and the rest counts in
    its input's drops (the gap in our sequence numbers). Zenoh's advanced publisher has no
    ``matching_status``, which the start barrier needs; the plain publisher never sends anything.
    """

    __slots__ = ("kept", "_options", "_session", "_key", "_messages", "_max_bytes", "_adv", "_plain",
                 "_largest", "_tally", "_slot", "_sent")

    def __init__(self, session: zenoh.Session, key: str, messages: int, max_bytes: int,
                 tally: SentTally | None = None, **options: Any) -> None:
        self._session, self._key, self._options = session, key, options
        self._messages, self._max_bytes = messages, max_bytes
        self._adv: Any = None
        self.kept = 0  # messages the cache keeps, once the first one was sent
        self._largest = -1  # the largest message sent so far; the cache holds kept of them at most
        self._plain = session.declare_publisher(key)
        # how many were sent, where the runner reads it if this process is killed (wire.tally)
        self._tally, self._sent = tally, 0
        self._slot = tally.slot(key.rsplit("/", 1)[1]) if tally is not None else None

    def put(self, payload: Any, **kw: Any) -> None:
        try:
            size = len(payload)
        except TypeError:  # a payload that does not tell its size: the message bound alone
            size = 0
        if size > self._largest:
            self._fit(size)
        self._adv.put(payload, **kw)
        if self._slot is not None:
            self._sent += 1
            self._tally.set(self._slot, self._sent)  # type: ignore[union-attr]

    def _fit(self, size: int) -> None:
        """Declare the advanced publisher (again) if its cache could not hold ``kept`` messages of
        ``size`` bytes within the bytes bound."""
        self._largest = size
        kept = kept_for(size, self._messages, self._max_bytes)
        if self._adv is not None and kept >= self.kept:
            return
        old, self.kept = self._adv, kept
        self._adv = zext.declare_advanced_publisher(
            self._session, self._key, cache=zext.CacheConfig(kept),
            # zenoh's stub marks sporadic_heartbeat required; at run time it defaults to None (off)
            sample_miss_detection=zext.MissDetectionConfig(heartbeat=HEARTBEAT),  # type: ignore[call-arg]
            **self._options)
        if old is not None:
            old.undeclare()

    @property
    def matching_status(self) -> Any:
        return self._plain.matching_status


def declare_publisher(session: zenoh.Session, key: str, **options: Any) -> Any:
    """A publisher for an output that a block reader on another machine reads: a
    :class:`ReplayPublisher`, or a plain one when ``$DORA_ZENOH_REPLAY_MESSAGES`` is 0."""
    messages = bound()
    if messages == 0:
        return session.declare_publisher(key, **options)
    return ReplayPublisher(session, key, messages, settings.REPLAY_BYTES.get_or_default(), tally=_sent_tally(),
                           **{"priority": PRIORITY, **options})


_TALLY: list[SentTally | None] = []  # this process's, opened at the first replayed output


def mark_noticed() -> None:
    """This process's end-of-stream notice went out (see dora_zenoh.wire.tally)."""
    if _TALLY and _TALLY[0] is not None:
        _TALLY[0].mark_noticed()


def _sent_tally() -> SentTally | None:
    """The file the runner named for this node's sent counts (``$DORA_ZENOH_SENT_FILE``), if any."""
    if not _TALLY:
        path = settings.SENT_FILE.get()
        try:
            _TALLY.append(SentTally(path) if path else None)
        except OSError as exc:
            warn(f"cannot keep the sent counts in {path}: {exc}; if this node is killed while a link is "
                 "down, its readers on other machines cannot count what it sent")
            _TALLY.append(None)
    return _TALLY[0]


class RecoveringSubscriber:
    """The subscriber of a block input whose source runs on another machine (see the module docstring).

    ``handler`` gets the samples in order, as a plain subscriber's would: a callback, or a
    FIFO channel the node's thread reads with ``try_recv``/``recv`` (dora_zenoh.node.fifo;
    the advanced subscriber fills it in Rust, holding later samples back while it recovers).
    A FIFO's reader has a :class:`CacheRepair` (``repair``), which asks the cache again for a
    gap Zenoh reported missed and logs what it still lacks; on a callback
    (``DORA_ZENOH_BLOCK_FIFO=0``), whose Zenoh thread must not wait for a query, a miss
    is logged here with the node, the input and how many. Either way the input counts it as
    dropped from the gap in sequence numbers when the next message (or its INPUT_CLOSED) arrives.
    """

    def __init__(self, session: zenoh.Session, key: str, handler: Any, node: str, input_id: str,
                 source: str) -> None:
        self.node, self.input_id, self.source = node, input_id, source
        self.missed = 0  # what Zenoh's recovery reported missed
        self.repair: CacheRepair | None = None
        if isinstance(handler, zenoh.handlers.FifoChannel):  # the node's thread reads it
            self.repair = CacheRepair(session, key, node, input_id, source)
        elif callable(handler) and not isinstance(handler, zenoh.handlers.Callback):  # a plain function
            handler = zenoh.handlers.Callback(handler, indirect=False)
        self._sub = zext.declare_advanced_subscriber(
            session, key, handler,
            # zenoh's stub marks periodic_queries required; at run time it defaults to None (off)
            recovery=zext.RecoveryConfig(heartbeat=True))  # type: ignore[call-arg]
        self.try_recv, self.recv = self._sub.try_recv, self._sub.recv
        self._listener: Any = self._sub.sample_miss_listener(
            zenoh.handlers.Callback(self._on_miss, indirect=False))

    def undeclare(self) -> None:
        """Stop both (a node's close undeclares every entity that calls Python back: see
        dora_zenoh.node.shutdown). Callable again when the subscriber's undeclare raised (a
        FIFO's ``recv`` holds it: dora_zenoh.node.fifo.FifoInput.release)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.undeclare()
        self._sub.undeclare()

    def _on_miss(self, miss: Any) -> None:
        self.missed += miss.nb
        if self.repair is None:  # else the repair logs what the cache no longer had
            warn(miss_message(self.node, self.input_id, self.source, miss.nb, self.missed))


class CacheRepair:
    """Asks a sender's replay cache, once more, for the messages missing before one that arrived.

    Zenoh's recovery declares a range missed when its query ends, answered or not, while a
    later sample waits: a link that Zenoh closes with the query out ends it without replies,
    and the sender's cache still holds the range (docs/design/outage.md: 165 messages, or one,
    in the emulated-link test). The reader's thread asks for exactly the gap (by Zenoh's
    sequence numbers of the sample's source, which step with those in our attachments), again
    while nothing answers (no route to the cache yet), for up to ``REPAIR_PATIENCE``; what the
    FIFO receives meanwhile goes to ``meanwhile``, since the Zenoh thread that brings the
    answer may be waiting for room in that FIFO.
    """

    def __init__(self, session: zenoh.Session, key: str, node: str, input_id: str, source: str) -> None:
        self._session, self._key = session, key
        self.node, self.input_id, self.source = node, input_id, source
        self.recovered = 0  # messages the cache gave back (tests look)
        self.lost = 0       # messages the cache no longer had
        self.queries = 0    # queries sent to caches (tests look)

    def fetch(self, sample: zenoh.Sample, first: int, count: int, meanwhile: Callable[[], None]) -> list:
        """The messages numbered ``first`` .. ``first + count - 1`` (our sequence numbers) that
        the cache of ``sample``'s sender still holds, in order; logs what it does not."""
        found: dict[int, zenoh.Sample] = {}  # seq -> sample, filled on Zenoh's threads
        info = sample.source_info
        if info is not None and info.source_sn > 0:
            sn = info.source_sn
            # Up to the sample itself: any answer at all means the cache was reached.
            prefix = f"{self._key}/@adv/*/{info.source_id.zid}/{info.source_id.eid}/**"
            sel = f"{prefix}?_sn={max(0, sn - count)}..{sn}"
            answered = threading.Event()

            def keep(reply: Any) -> None:  # on a Zenoh thread
                got = reply.ok
                if got is None:
                    return
                answered.set()
                seq = sample_seq(got)
                if seq is not None and first <= seq < first + count:
                    found[seq] = got

            deadline = time.monotonic() + REPAIR_PATIENCE
            reachable = False
            while True:
                self._ask(sel, keep, deadline, meanwhile)
                if answered.is_set() or reachable or time.monotonic() >= deadline:
                    break
                # No answer: no route to the cache yet (the link's old transport closed as the
                # gap was declared; the new one comes within a second or so), or the cache no
                # longer holds even the sample (sends since pushed it out: the gap was longer than
                # the cache). Its newest sample answering tells the second: then one more ask
                # (the route may have come between the two) and the gap counts at once, not
                # after REPAIR_PATIENCE (data held 3 s after every long outage).
                reachable = self._answers(f"{prefix}?_max=1", deadline, meanwhile)
                if reachable:
                    continue
                until = time.monotonic() + 0.1
                while time.monotonic() < until:
                    meanwhile()
                    time.sleep(0.002)
        got = dict(found)  # a copy: replies after the deadline change nothing here
        recovered = [got[seq] for seq in sorted(got)]
        self.recovered += len(recovered)
        if recovered:
            note(f"node '{self.node}': input '{self.input_id}' got {len(recovered)} message(s) of {self.source} "
                 "again from its sender's replay cache after Zenoh's recovery had given up on them")
        lost = count - len(recovered)
        if lost:
            self.lost += lost
            warn(miss_message(self.node, self.input_id, self.source, lost, self.lost))
        return recovered

    def _answers(self, sel: str, deadline: float, meanwhile: Callable[[], None]) -> bool:
        """Whether the sender's cache answers ``sel`` with a sample (it is reachable)."""
        answered = threading.Event()

        def keep(reply: Any) -> None:  # on a Zenoh thread
            if reply.ok is not None:
                answered.set()

        self._ask(sel, keep, deadline, meanwhile)
        return answered.is_set()

    def _ask(self, sel: str, keep: Callable[[Any], None], deadline: float, meanwhile: Callable[[], None]) -> None:
        """One query, sent from a thread of its own while this one calls ``meanwhile``: the
        query can wait for a lock that a Zenoh thread holds while it waits for room in the FIFO
        (a closing link's queries are finalized under Zenoh's query lock, and finalizing
        Zenoh's recovery query flushes what it held into the FIFO: py-spy, docs/design/outage.md)."""
        self.queries += 1
        timeout = max(0.1, deadline - time.monotonic())

        def ask(done: Callable[[], None]) -> None:
            try:
                self._session.get(sel, zenoh.handlers.Callback(keep, done, indirect=False),
                                  consolidation=_NONE, accept_replies=_ANY_KEY, timeout=timeout)
            except zenoh.ZError:  # the session is closing
                done()

        while_emptying(ask, meanwhile, timeout + 1.0, "dora-zenoh-repair")


def miss_message(node: str, input_id: str, source: str, count: int, total: int) -> str:
    """The line a reader logs when a sender's replay cache no longer had what it missed."""
    return (f"node '{node}': input '{input_id}' lost {count} message(s) of {source} that its sender no "
            f"longer kept ({total} in all): the link was down longer than the sender's replay cache lasts "
            f"({settings.REPLAY_MESSAGES.name}, {settings.REPLAY_BYTES.name} of the sending node); they count "
            "in the input's drops")


def ended_message(node: str, input_id: str, source: str, count: int) -> str:
    """The line a reader logs when a sender on another machine ended (for good) with messages that
    never reached it (the reader cannot tell why: a link outage, or a link that Zenoh closed), and
    its replay cache ended with its process."""
    return (f"node '{node}': input '{input_id}' lost {count} message(s) of {source} that never arrived: its sender "
            "ended before they reached this node (sent while the link to it was down, or queued on a link that "
            "Zenoh closed), and what it kept for replay ended with it (the count is its end-of-stream "
            "notice's, or its supervisor's); they count in the input's drops")
