"""Per-input bounded queues, and the bookkeeping every input needs (counts, closing).

A node's *primary* input (see :mod:`dora_zenoh.node.inbox`) is received straight from a
Zenoh ring channel by the node's thread; its ``InputQueue`` only keeps the counts
(``arrived``) and, once closed, the end-of-stream marker. Every other input is fed
by a Zenoh callback (``Callback(indirect=False)``) into its own bounded deque, so a
flooded input drops *its own* oldest messages (or, with ``queue_policy: block``,
holds back *its own* sender) and never delays the others. Each queued item puts one
token in the node's inbox, so ``next()`` serves inputs in arrival order.
"""
from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from dora_zenoh.console import warn
from dora_zenoh.wire import codec as wire

_SEQ_NEXT = wire.SEQ_NEXT

CLOSED = object()  # end-of-stream marker placed after an input's last message


START_BACKLOG_BYTES = 64 << 20  # payload a block input takes beyond its queue_size while Node() starts


class InputQueue:
    """One input's queue. ``put`` runs on Zenoh threads, ``take`` on the node's thread."""

    __slots__ = ("id", "items", "size", "block", "dropped", "closed", "lock", "not_full", "wake",
                 "source_node", "source_output", "stdout", "timer_ns", "_stopping", "received",
                 "first_seq", "expect", "busy", "last_seq", "sent_total", "on_lost", "early_room", "reported",
                 "unread", "lost")

    def __init__(self, input_id: str, size: int, block: bool, wake: Any,
                 source_node: str | None = None, source_output: str | None = None,
                 stdout: bool = False, timer_ns: int | None = None) -> None:
        self.id = input_id
        self.items: deque = deque()
        self.size = max(1, size)
        self.block = block
        self.dropped = 0
        self.lost = 0  # of ``dropped``: messages that never reached this node (gaps in sequence numbers)
        self.reported = False  # its totals were said (report_closed, or report_at_exit)
        self.unread = 0  # messages that had arrived when the node ended, in a FIFO or the inbox's ring
        self.closed = False
        self.lock = threading.Lock()
        self.not_full = threading.Condition(self.lock)
        self.wake = wake
        self.source_node = source_node
        self.source_output = source_output
        self.stdout = stdout
        self.timer_ns = timer_ns
        self._stopping = False
        self.received = 0                 # messages that reached this queue (dropped ones too)
        self.first_seq: int | None = None  # sender's sequence number of the first one we got
        self.expect: int | None = None     # sender's final count, from its end-of-stream notice
        self.busy = False                  # a sender is blocked in put() (queue_policy: block)
        self.last_seq: int | None = None   # the last sequence number that reached us
        self.sent_total: int | None = None  # (see hint_sent) what the source's processes sent in all
        self.on_lost: Callable[[int], None] | None = None
        # Payload bytes a full block input still takes while Node() waits for its readers
        # (see dora_zenoh.node.barrier); 0 once it returned.
        self.early_room = 0

    def put(self, item: Any) -> None:
        """Queue one message (a Zenoh sample, or a timer tick's time); drop this input's
        oldest or wait, as its policy says. This is the Zenoh callback: keep it lean."""
        with self.lock:
            if self.closed:
                return
            if item.__class__ is not int:
                self._count_seq(item)
            items = self.items
            if len(items) >= self.size:
                if not self.block:
                    self._drop_oldest_for(item)
                    return
                if self.early_room > 0 and item.__class__ is not int:
                    self.early_room -= len(item.payload)  # the node is starting: take it
                else:
                    self._wait_for_room()
            items.append(item)
            self.received += 1
            self.wake.put(self)
            if self.expect is not None:
                self._close_if_complete()

    def _count_seq(self, sample: Any) -> None:
        """Follow the sender's sequence numbers: a gap is messages lost on the way (it runs per
        message: ``sample_seq`` and ``gap_before`` inlined)."""
        att = sample.attachment
        seq = wire.seq_in(att.to_bytes()) if att is not None else None
        if self.first_seq is None:
            self.first_seq = 0 if seq is None else seq  # where the sender's sequence starts for us
        if seq is not None:
            last = self.last_seq if self.last_seq is not None else self.first_seq - 1
            if seq > last + 1:  # lost on the way (the sender's publisher dropped them; a full
                self.count_dropped(seq - last - 1, on_the_way=True)  # queue's own drops are counted in put)
            self.last_seq = seq

    def gap_before(self, sample: Any) -> tuple[int, int] | None:
        """(first, count) of the sender's messages missing before ``sample``, if any (as
        ``_count_seq`` would count them); read by the node's thread before ``taken``."""
        seq = sample_seq(sample)
        last = self.last_seq if self.last_seq is not None else (
            self.first_seq - 1 if self.first_seq is not None else None)
        if seq is None or last is None or seq <= last + 1:
            return None
        return last + 1, seq - last - 1

    def taken(self, sample: Any) -> bool:
        """A message the node's thread took from this input's FIFO channel (see
        :mod:`dora_zenoh.node.fifo`): count it and queue it for the token the caller serves.
        False if the input's INPUT_CLOSED was handed out already (the message is ignored, as
        ``put`` ignores one after the close). One that arrives after the close was decided
        but before the node got INPUT_CLOSED goes before it: it was in the FIFO already."""
        with self.lock:
            items = self.items
            if self.closed:
                if not items or items[-1] is not CLOSED:
                    return False
                self._count_seq(sample)
                items.insert(len(items) - 1, sample)
                self.received += 1
                return True
            self._count_seq(sample)
            items.append(sample)
            self.received += 1
            if self.expect is not None:
                self._close_if_complete()
        return True

    def delivered(self, sample: Any, raw: bytes | None, repairing: bool = False) -> bool:
        """``taken`` for a message the node's thread hands out at once, not queued (the inbox's
        one-FIFO path): counted (``raw``: its attachment's bytes; the next in sequence, the common
        case, needs no parse). False, with nothing done, when it must be queued, where ``taken``
        puts it in order: the input has closed or has items queued, or (``repairing``: its FIFO's
        sender keeps a cache) a gap before it is to be fetched again first. (Only the node's
        thread moves a FIFO input's ``last_seq``: it still holds.)

        The next in sequence is counted without the lock (~0.15 us a message): only the node's
        thread writes a FIFO input's ``last_seq`` and ``received``, and a close decided by
        another thread after the look at ``closed`` puts its INPUT_CLOSED after this message,
        as one decided under the lock a moment later would."""
        last = self.last_seq
        if (raw is not None and last is not None and not self.closed and not self.items
                and raw.startswith(_SEQ_NEXT % (last + 1))):
            self.last_seq = last + 1
            self.received += 1
            if self.expect is not None:
                with self.lock:
                    self._close_if_complete()  # its INPUT_CLOSED comes after this message
            return True
        with self.lock:  # not the next in sequence (the look above would have held, as nothing it read changed)
            if self.closed or self.items:
                return False
            if repairing and self.gap_before(sample) is not None:
                return False
            self._count_seq(sample)
            self.received += 1
            if self.expect is not None:
                self._close_if_complete()  # its INPUT_CLOSED comes after this message
        return True

    def arrived(self, raw: bytes, ring_full: bool = True) -> None:
        """A message of the primary input came out of the inbox's ring (``raw``: its
        attachment): count it, and the messages missing before it (the gap in sequence
        numbers): pushed out of the ring if it may have been full (``ring_full``), else
        lost on the way. The inbox stops calling it once this input's INPUT_CLOSED
        has taken its place in the stream: it may have closed already, and the messages
        that arrived before the close are still delivered."""
        seq = wire.seq_in(raw)
        if seq is not None:
            last = self.last_seq
            if last is None:
                if self.first_seq is None:
                    self.first_seq = seq
                elif seq > self.first_seq:  # missing before the first we read
                    self.count_dropped(seq - self.first_seq, on_the_way=not ring_full)
            elif seq > last + 1:
                self.count_dropped(seq - last - 1, on_the_way=not ring_full)
            self.last_seq = seq
            self.received = seq + 1 - (self.first_seq or 0)
        else:  # a plain Zenoh publisher: no sequence numbers
            self.received += 1

    def arrived_all(self, raws: list[bytes], ring_full: bool = True) -> None:
        """``arrived`` for a batch drained from the inbox's ring, oldest first (``ring_full``:
        whether the ring may have overflowed since it was last seen empty).

        The common case costs two parses, not one per message: when the first and the
        last are numbered ``last_seq + 1`` and ``last_seq + n``, the n messages of one
        sender's strictly rising sequence have no gap. Anything else is counted one by
        one. (A gap that a plain Zenoh publisher's message in the middle exactly makes
        up for goes unreported: it changes the drop warning, not what is delivered.)
        """
        n = len(raws)
        last = self.last_seq
        if last is not None and n > 1 and wire.seq_in(raws[0]) == last + 1:
            seq = wire.seq_in(raws[-1])
            if seq == last + n:
                self.last_seq = seq
                self.received = seq + 1 - (self.first_seq or 0)
                return
        for raw in raws:
            self.arrived(raw, ring_full)

    def settle(self) -> None:
        """After a batch of ``arrived`` (and the drops of trimming it): close if the
        sender's end-of-stream notice says this was all."""
        if self.expect is not None:
            with self.lock:
                self._close_if_complete()

    def _drop_oldest_for(self, item: Any) -> None:
        self.items.popleft()
        self.items.append(item)
        self.received += 1
        self.count_dropped(1)
        if self.expect is not None:
            self._close_if_complete()

    def count_dropped(self, n: int, on_the_way: bool = False) -> None:
        """``n`` more messages of this input were dropped; the first drop is logged at once.
        ``on_the_way``: they never reached this node (a gap in sequence numbers, not the queue's drop)."""
        self.dropped += n
        if on_the_way:
            self.lost += n
        if self.dropped == n:
            if on_the_way:
                warn(f"input '{self.id}' lost {n} message(s) on the way (a gap in its sender's sequence "
                     "numbers); the total is reported when the input closes or the node ends")
            else:
                warn(f"input '{self.id}' is full (queue_size={self.size}): dropping its oldest "
                     "messages; the total is reported when the input closes or the node ends")

    def _wait_for_room(self) -> None:
        """``queue_policy: block``: hold the sender (a Zenoh thread) until the node takes one."""
        self.busy = True
        while len(self.items) >= self.size and not self._stopping:
            self.not_full.wait(1.0)
        self.busy = False

    def finish(self, total: int) -> None:
        """The sender announced it sent ``total`` messages: close once they are all here.

        The notice can overtake data (it may travel another route, or data may wait
        behind a blocked callback), so closing on it alone could lose messages.
        """
        with self.lock:
            self.expect = total
            self._close_if_complete()

    def close_when_quiet(self, quiet: float = 0.05, patience: float = 2.0,
                         ready: Callable[[], bool] | None = None, give_up: float | None = None,
                         _seen: tuple[int, float] | None = None) -> None:
        """The sender is gone without a notice (crash): close once nothing is in flight.

        Waits until ``ready()`` (if given) holds, no sender is blocked on this queue and
        nothing arrived for ``quiet`` seconds, or ``patience`` seconds when a notice
        promised more than has arrived. After 10 s it closes whatever the state.
        Re-checks on a timer thread, only while such a close is pending.
        """
        now = time.monotonic()
        give_up = now + 10.0 if give_up is None else give_up
        with self.lock:
            if self.closed:
                return
            count, since = _seen if _seen is not None and _seen[0] == self.received else (self.received, now)
            wanted = patience if self.expect is not None else quiet
            settled = not self.busy and _seen is not None and now - since >= wanted - 1e-3
            if (settled and (ready is None or ready())) or now >= give_up:
                self._close_locked()
                return
        timer = threading.Timer(quiet, self.close_when_quiet, (quiet, patience, ready, give_up, (count, since)))
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        """Close now (timers, shutdown)."""
        with self.lock:
            self._close_locked()

    def _got(self) -> int:
        """How far into the sender's sequence we are (messages that arrived or were lost on the way)."""
        return self.last_seq + 1 if self.last_seq is not None else self.received + (self.first_seq or 0)

    def _close_if_complete(self) -> None:
        if self.expect is not None and self._got() >= self.expect:
            self._close_locked()

    def _close_locked(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.items.append(CLOSED)
        self.wake.put(self)

    def hint_total(self, total: int) -> None:
        """The runner says the sender sent ``total`` messages (its notice did not reach us):
        what never came is counted as dropped when the input closes."""
        with self.lock:
            if self.expect is None:
                self.expect = total

    def hint_sent(self, total: int, on_lost: Callable[[int], None]) -> None:
        """A ``queue_policy: block`` input whose source ran on another machine: its processes sent
        ``total`` messages in all. What neither arrived nor was counted already (a sender that
        ended during a link outage took what it kept for replay with it) is counted, and
        ``on_lost`` told how many, when the input closes, or at once if its INPUT_CLOSED was
        handed out already (the count came late). (A block queue never drops: what arrived is
        ``received``, what the gaps in sequence numbers lost is ``dropped``.)"""
        with self.lock:
            self.sent_total, self.on_lost = total, on_lost
            if not self.reported:
                return
            missing = self._take_unsent()
        if missing:
            on_lost(missing)

    def _take_unsent(self) -> int:
        """Count as dropped what the sender's total says it sent and neither arrived nor was
        counted already (a block input whose sender's count is known); how many."""
        if self.sent_total is None or not self.block:
            return 0
        missing = self.sent_total - self.received - self.dropped
        if missing <= 0:
            return 0
        self.dropped += missing
        return missing

    def report_closed(self) -> None:
        """The node is handed this input's INPUT_CLOSED, after every message before it: count
        what the sender's final count promised and never came, and report the drops."""
        missing = self._take_unsent()
        if missing and self.on_lost is not None:
            self.on_lost(missing)
        if self.expect is not None and self._got() < self.expect:  # (promised, never came)
            self.count_dropped(self.expect - self._got(), on_the_way=True)
        self.reported = True
        if self.dropped:
            if self.block:  # a block queue never drops: they were lost between the nodes
                warn(f"input '{self.id}' lost {self.dropped} message(s) in all on the way (queue_policy: block)")
            else:
                warn(f"input '{self.id}' dropped {self.dropped} message(s) in all ({self._drop_causes()})")

    def report_at_exit(self, sent: int | None = None, queued: int | None = None) -> None:
        """The node ends (STOP, its own choice) before this input closed: what it dropped is
        still said (its total was only ever said at INPUT_CLOSED), and what its source sent that
        it never read (its node ended first: a reader still behind when its STOP came, past the
        wait for its sources, see EndOfStream._drain_then_stop, or one that chose to end).
        ``sent``: the source's count now, if it answered (else only what had arrived counts);
        ``queued``: what the node had taken in and not read, if not this queue's items (the
        primary input's, in the inbox)."""
        if not self.reported and self.timer_ns is None and not self.stdout:  # (its INPUT_CLOSED not handed out)
            if queued is None:
                queued = sum(1 for item in self.items if item is not CLOSED)
            total = sent if sent is not None else self.expect
            beyond = total - self._got() if total is not None and self.last_seq is not None else self.unread
            if queued + max(0, beyond):
                policy = "queue_policy: block" if self.block else f"queue_policy: drop_oldest, queue_size={self.size}"
                warn(f"input '{self.id}': {queued + max(0, beyond)} message(s) its source sent were not read when "
                     f"the node ended ({policy})")
        if self.reported or not self.dropped:
            return
        self.reported = True
        if self.block:
            warn(f"input '{self.id}' lost {self.dropped} message(s) on the way before the node ended "
                 "(queue_policy: block)")
        else:
            warn(f"input '{self.id}' dropped {self.dropped} message(s) before the node ended ({self._drop_causes()})")

    def _drop_causes(self) -> str:
        """The queue size behind a drop_oldest input's drops, and how many of them never came."""
        lost = f"; {self.lost} of them lost on the way, not to a full queue" if self.lost else ""
        return f"queue_size={self.size}{lost}"

    def take(self) -> Any:
        """The oldest queued item; only called after a wake token for this input."""
        with self.lock:
            item = self.items.popleft()
            if self.block:
                self.not_full.notify()
        return item

    def release(self) -> None:
        """Let a sender blocked on this full input go (the node is shutting down)."""
        with self.lock:
            self._stopping = True
            self.not_full.notify_all()


def timer_heap(timers: list[InputQueue]) -> list[tuple[int, int, int, InputQueue]]:
    """The timers' first deadlines, one period from now, as a heap of (next deadline in
    monotonic ns, tie-breaker, period, queue): what the timer thread and a LockInbox tick from."""
    now = time.monotonic_ns()
    heap = []
    for i, t in enumerate(timers):
        if t.timer_ns is None:
            raise ValueError(f"input {t.id!r} is not a timer")
        heap.append((now + t.timer_ns, i, t.timer_ns, t))
    heapq.heapify(heap)
    return heap


class TimerThread(threading.Thread):
    """Generates the ``dora/timer/...`` inputs of one node, drift-free, on one thread: for a
    node that waits in a Zenoh ring (:mod:`dora_zenoh.node.inbox`), whose thread cannot wait
    for a deadline too; a node on timers only ticks them itself (:mod:`dora_zenoh.node.lockbox`).

    It sleeps on an Event until the next deadline, so an idle node costs nothing.
    """

    def __init__(self, timers: list[InputQueue]) -> None:
        super().__init__(name="dora-zenoh-timers", daemon=True)
        self._stop_event = threading.Event()
        self._heap = timer_heap(timers)

    def run(self) -> None:
        heap = self._heap
        while heap:
            deadline, i, period, timer = heap[0]
            delay = (deadline - time.monotonic_ns()) / 1e9
            if delay > 0 and self._stop_event.wait(min(delay, threading.TIMEOUT_MAX)):  # (a period of centuries)
                return
            if timer.closed:
                heapq.heappop(heap)
                continue
            timer.put(time.time_ns())
            nxt = deadline + period
            now = time.monotonic_ns()
            if nxt < now:  # we fell behind (suspended, overloaded): skip missed ticks
                nxt = now + period
            heapq.heapreplace(heap, (nxt, i, period, timer))

    def stop(self) -> None:
        self._stop_event.set()


def sample_seq(sample: Any) -> int | None:
    """The sequence number in a message's attachment (None for a plain Zenoh publisher's)."""
    att = sample.attachment
    return wire.seq_in(att.to_bytes()) if att is not None else None


def seq_of(sample: Any) -> int:
    """The sequence number in a message's attachment (0 for a plain Zenoh publisher)."""
    seq = sample_seq(sample)
    return 0 if seq is None else seq

