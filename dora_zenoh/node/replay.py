"""Outputs read by a ``queue_policy: block`` reader on another machine survive a link outage.

A link between machines that goes down loses what was queued on it once Zenoh closes it
(its lease, or TCP giving up), and a ``BLOCK`` publisher does not hold messages for a peer it
has lost. For those outputs (and only those: a same-machine reader never needs it) the
sender uses Zenoh's advanced publisher, which keeps its last ``$DORA_ZENOH_REPLAY_MESSAGES``
messages (fewer when ``$DORA_ZENOH_REPLAY_BYTES`` holds fewer) in a cache and announces its
last sequence number in a heartbeat; the remote block reader uses Zenoh's advanced
subscriber, which sees a gap (a jump, or a heartbeat ahead of what it has: a silent tail),
fetches the missing range from the cache, and delivers in order, holding later messages
meanwhile. What the cache no longer had is a *miss*: logged here, and counted in the input's
drops by the gap it leaves in our own sequence numbers (``InputQueue.put``). Why Zenoh's and
not our own: docs/design/outage.md.
"""
from __future__ import annotations

from typing import Any

import zenoh
import zenoh.ext as zext

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.wire.tally import SentTally

# Seconds between heartbeats of a replayed output (one tiny message each): how soon a reader
# notices a tail it never got once the link is back.
HEARTBEAT = 0.5
# A replayed output's priority. Zenoh's heartbeat (and its replies from the cache) go at
# priority DATA: on the same queue as a BLOCK put waiting for room, a heartbeat stalled Zenoh's
# sending until it closed the link 5 s later, losing what was queued (docs/machines.md).
PRIORITY = zenoh.Priority.DATA_HIGH


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
    A miss is logged here with the node, the input and how many; the input counts it as
    dropped from the gap in sequence numbers when the next message (or its INPUT_CLOSED) arrives.
    """

    def __init__(self, session: zenoh.Session, key: str, handler: Any, node: str, input_id: str,
                 source: str) -> None:
        self.node, self.input_id, self.source = node, input_id, source
        self.missed = 0
        if callable(handler) and not isinstance(handler, zenoh.handlers.Callback):  # a plain function
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
        warn(miss_message(self.node, self.input_id, self.source, miss.nb, self.missed))


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
