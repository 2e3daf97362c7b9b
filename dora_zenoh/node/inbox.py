"""Where a node's thread waits for its next event: one Zenoh ring channel.

Why not a Python queue fed by Zenoh callbacks? A callback makes Zenoh's receive
thread take the GIL, and waking the node's thread then costs a second GIL hand-over.
A Zenoh channel is filled in Rust without the GIL, and ``recv()`` waits with the GIL
released, so a message wakes the node once (measured: see docs/design/inbox.md).

Zenoh's channels cannot be waited on together, so a node waits on one ring channel:
the subscriber of its *primary* input (the first input with the default
``drop_oldest`` policy). Everything else that must wake the node (its other inputs,
timers, INPUT_CLOSED, STOP, a ``next(timeout)`` deadline) is queued in
Python and announced by a *marker*: a DELETE sample with attachment ``@dz``, put on
the primary input's key with ``allowed_destination=SESSION_LOCAL``, so that it only
enters this session's ring, right behind the data that arrived before it. No other
process ever sees a marker. A node with no such input but FIFO inputs (below) waits on
a ring of its own under the internal key space, which only ever carries markers; one with
neither waits on a Python lock instead (:mod:`dora_zenoh.node.lockbox`).

The ring is sized so that markers can never push out data the input's queue_size
allows: there are never more markers outstanding than queued tokens. A flood of
data can push markers out, so a queued token whose marker never shows up is served
as soon as the ring is empty. When the node asks for an event, everything in the
ring is drained into local order, and the primary input's data is trimmed to its
``queue_size`` (oldest dropped) right then.

Whenever the node's thread is about to block (or a ``timeout=0`` poll finds nothing),
the inbox first calls ``before_wait`` (nothing, unless the node set it): the node uses
it to push out what it just sent (see ``Node._flush``), and tells whether it sent
anything since it last waited. If it did, and the node has a ``spin``, the thread polls
the ring a little while before it blocks (see ``dora_zenoh.tuning.sched.Spin``).

``queue_policy: block`` inputs are read from Zenoh FIFO channels of their own
(:mod:`dora_zenoh.node.fifo`): the thread takes one message from each whenever it
looks at the ring (and in its poll), and only while it sleeps does a message of
theirs ring it, with one marker (``MARK_FIFO``). A node with one FIFO input gets that
input's messages as samples too, taken straight from the FIFO, with or without a primary
input (``_one_get``: docs/design/inbox.md, Keeping the per-message path short).
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zenoh

from dora_zenoh.node.fifo import Bells, FifoInput
from dora_zenoh.node.inputs import START_BACKLOG_BYTES
from dora_zenoh.tuning.sched import sched_yield
from dora_zenoh.wire.codec import SEQ_NEXT

if TYPE_CHECKING:
    from dora_zenoh.node.inputs import InputQueue
    from dora_zenoh.tuning.sched import Spin

MARK = b"@dz"            # attachment of a marker: another source has a token queued
MARK_ALARM = b"@dzt"     # a next(timeout) deadline passed, or a wait lasted DOZE_AFTER
MARK_FIFO = b"@dzf"      # a FIFO input's bell: one of its messages came while the thread slept
BELL_PATIENCE = 0.02     # s to poll for the message a bell rang for before it reached its FIFO
RECOVERY_LOOK = 0.1      # s the thread sleeps in the ring at most while a recovering FIFO may fill
DOZE_AFTER = 1.0         # s a blocking wait lasts before the thread dozes (see the module docstring)
# _one_get looks at an empty ring again only after this many FIFO messages (each look is a
# try_recv, ~0.2 us warm, on the per-message path); a sleep looks at it first anyway.
RING_LOOK_EVERY = 8
_LOCAL = zenoh.Locality.SESSION_LOCAL
_DELETE = zenoh.SampleKind.DELETE
_SAMPLE = zenoh.Sample
_monotonic = time.monotonic


class Inbox:
    """The node thread's single wait point (see the module docstring).

    ``get()`` returns either a ``zenoh.Sample`` of the primary input or of the one FIFO input
    (``fifo_sample`` says which) or a token that ``put()`` queued (an ``InputQueue`` with an
    item, or any other object).
    """

    def __init__(self, session: zenoh.Session, key: str, ring_size: int, primary: InputQueue | None) -> None:
        self._session = session
        self._key = key
        self._sub = session.declare_subscriber(key, zenoh.handlers.RingChannel(ring_size))
        self._recv = self._sub.recv
        self._try_recv = self._sub.try_recv
        self._pending: deque = deque()   # tokens from put(), oldest first
        self._local: deque = deque()     # drained from the ring, in arrival order
        self._served_early = 0           # tokens served before their marker was read
        self.urgent: Any = None          # a token get() hands out before anything else (a late STOP)
        self._arrived: list[bytes] = []  # attachments of the primary samples just drained
        # Ring items taken since the ring was last seen empty: the ring can only have pushed
        # anything out (it holds ring_size) within a run of at least that many.
        self._run = 0
        self._ring_size = ring_size
        self.primary = primary
        self._primary_ended = False      # the primary input's INPUT_CLOSED is queued
        self._primary_size = primary.size if primary is not None else 1 << 62
        self._closed = False
        # Held while a thread rings: once close() has it, no thread is or will be inside
        # Zenoh through this inbox (see dora_zenoh.node.shutdown).
        self._gate = threading.RLock()  # re-entered when a marker reaches a callback input of the same key
        self._alarm = _Alarm(self._ring)
        self._doze_at = float("inf")     # when the current blocking wait turns into a doze
        self._dozy = False               # the alarm said the current wait lasted DOZE_AFTER
        self._bell = threading.Lock()    # what a dozing thread blocks on (see _doze)
        self.dozes = 0                   # how many times the thread dozed (tests look)
        self.before_wait: Callable[[], bool] = _nothing  # see the module docstring
        # The attachment's bytes of the sample get() just returned, when it read them (or None):
        # the node checks them without asking Zenoh for them again.
        self.attachment: bytes | None = None
        self.spin: Spin | None = None
        self._fifos: list[FifoInput] = []  # block inputs read from FIFO channels (see add_fifo)
        # The node's one FIFO input, with or without a primary input: get() hands out its
        # messages as samples, as the primary input's (see _one_get); ``fifo_sample`` says
        # get() just did.
        self.one: FifoInput | None = None
        self.fifo_sample = False
        self._recovering = False           # one of them is filled by Zenoh's recovery too (see _wait_fifos)
        self._bells: Bells | None = None
        self._bell_unanswered = False    # a bell rang and its FIFO looked empty (see _wait_fifos)
        self._kick_ready = False         # the thread sleeps in a FIFO: the ring's watcher may kick it
        # Zenoh puts the primary input's data in the ring itself; without a primary input only
        # _ring writes there, and kicks a thread asleep in its FIFO itself (see _sleep_in_fifo).
        self._watch_ring = primary is not None
        self.watches = 0                 # watchers declared for sleeps in a FIFO (tests look)
        # A watcher kept from sleep to sleep while the primary input is quiet (see _watcher),
        # and that input's count at the last sleep; the lock keeps release_fifos and the node's
        # thread from leaving one declared past the close.
        self._kept_watch: Any = None
        self._quiet_mark = -1
        self._watch_lock = threading.Lock()
        self.fifo_sleeps = 0             # sleeps in a FIFO (tests look)
        self._ring_looks_skipped = 0     # _one_get's looks at an empty ring still to skip
        self._fifos_released = False
        self.fifo_taken = 0              # block messages taken from FIFOs (tests look)
        self.handed_out = 0              # of those, handed out as samples by _one_get (tests look)
        self._drained = 0                # payload bytes drain_fifos queued
        self.drained = 0                 # messages drain_fifos queued (tests look)

    def add_fifo(self, fifo: FifoInput) -> None:
        """Serve a block input from its FIFO channel (see :mod:`dora_zenoh.node.fifo`)."""
        self._fifos.append(fifo)
        self._recovering = self._recovering or fifo.recovering
        self.one = self._fifos[0] if len(self._fifos) == 1 else None
        self._bells = Bells(self._session, [f.key for f in self._fifos], self._ring_fifo)

    @property
    def has_fifos(self) -> bool:
        return bool(self._fifos)

    def drain_fifos(self) -> None:
        """Take what the FIFOs hold into their inputs' queues, in local order, while the node's
        thread waits for something else (the start barrier): a full FIFO can stop the session
        reading every link (docs/design/inbox.md), so a thread that waits for Zenoh without
        draining may wait for ever. Up to START_BACKLOG_BYTES of payload in all; past that the
        FIFOs fill and hold their senders back, as ``block`` says."""
        for fifo in self._fifos:
            while self._drained < START_BACKLOG_BYTES and (sample := fifo.take()) is not None:
                self._drained += len(sample.payload)
                self.drained += self._queue_up(fifo, sample)

    def release_fifos(self) -> None:
        """The node is closing: let Zenoh threads waiting for room in a FIFO go (any thread)."""
        self._fifos_released = True  # the node's thread sleeps in the ring from now on
        self._drop_kept_watch()
        for fifo in self._fifos:
            fifo.release()
        if self._bells is not None:
            self._bells.disarm()

    # -- any thread ------------------------------------------------------------------
    def put(self, token: Any) -> None:
        """Queue a token and wake the node's thread (from Zenoh callbacks, timers, ...).

        Token and marker go in together, under the gate: markers claim tokens in ring order,
        so a timer's token queued between another thread's token and its marker would take
        that marker's place in arrival order (a side input's message delivered after data
        that came later: test_inbox -k order_across, once in CI on 3 Dec)."""
        with self._gate:
            self._pending.append(token)
            self._ring(MARK)

    def _ring_fifo(self) -> None:
        self._ring(MARK_FIFO)

    def _ring(self, tag: bytes) -> None:
        with self._gate:
            if self._closed:
                return
            try:
                self._session.delete(self._key, attachment=tag, allowed_destination=_LOCAL)
            except Exception:  # the session is closing: nobody is waiting any more
                return
            if not self._watch_ring:  # a thread asleep in its FIFO has no watcher to kick it
                self._kick()

    # -- the node's thread -----------------------------------------------------------
    def get(self, timeout: float | None = None) -> Any:
        """The next sample or token, oldest first (but ``urgent``, once set); raises
        ``queue.Empty`` after ``timeout`` s."""
        self.attachment = None
        self.fifo_sample = False
        if self.urgent is not None:
            token, self.urgent = self.urgent, None
            return token
        local = self._local
        if local:
            return local.popleft()
        deadline = None
        if timeout is not None:
            if timeout <= 0:
                return self._get(None, blocking=False)
            deadline = _monotonic() + timeout
            self._alarm.arm(deadline)
        if self._pending or self._fifos:
            if not self._pending and (one := self.one) is not None:
                return self._one_get(one, deadline)
            return self._get(deadline)
        # The common case, kept short (it runs per message, on a just-woken thread): one
        # message of the primary input from a dora-zenoh sender, the next in its sequence
        # (the attachment starts with that number: no need to parse it, which alone costs
        # ~4 us on a cold CPU), and nothing else in the ring. Anything else, a gap before it
        # included, takes the general path.
        try:
            sample = self._wait()
            more = self._try_recv()
        except zenoh.ZError as exc:  # the session was closed under us: no more events
            raise queue.Empty from exc
        if more is None:
            primary = self.primary
            if primary is not None and (last := primary.last_seq) is not None and not self._primary_ended:
                att = sample.attachment
                if att is not None:
                    raw = att.to_bytes()
                    if raw.startswith(SEQ_NEXT % (last + 1)):  # the next: arrived() without a parse
                        primary.last_seq = last + 1
                        primary.received += 1
                        if primary.expect is not None:
                            primary.settle()
                        self.attachment = raw
                        return sample
        self._take(sample)
        if more is not None:
            self._take(more)
        return self._get(deadline, drained=True)

    def _one_get(self, fifo: FifoInput, deadline: float | None) -> Any:
        """``get()`` for a node with one FIFO input and nothing queued: the message itself, as
        the primary input's short path returns its sample, not a token for it (no queueing and
        taking back under the input's lock, no token's event: docs/design/inbox.md), and a
        sleep in that FIFO when there is nothing (``fifo_sample`` tells the node the sample is
        the FIFO input's). Anything else (a ring item, a kick, a gap to fetch again, a close)
        goes on in the general path.

        Without a primary input the FIFO is looked at first: the ring then holds markers only,
        each behind a token in ``_pending``, and a FIFO message goes before what the ring gave
        since (see ``_fifos_first``). With one, Zenoh puts the primary
        input's data in the ring itself: the ring is looked at first (again after
        ``RING_LOOK_EVERY`` FIFO messages once it was empty), so a flood in the FIFO never keeps
        that input or an alarm waiting long (STOP and timers come with a token in ``_pending``,
        seen at once), and what it gives goes in local order behind what the FIFO holds (``_file``)."""
        try:
            if self.primary is not None:
                if self._ring_looks_skipped:  # looked at a moment ago (see RING_LOOK_EVERY)
                    self._ring_looks_skipped -= 1
                elif (item := self._try_recv()) is not None:
                    if self._kept_watch is not None:  # the primary input is not quiet (see _watcher)
                        self._drop_kept_watch()
                    self._file(item)
                    return self._get(deadline, drained=True)
                else:
                    self._ring_looks_skipped = RING_LOOK_EVERY - 1
            sample = fifo.take()
            if sample is None:
                sample = self._one_wait(fifo)
            if sample is not None:
                self._bell_unanswered = False
                raw = fifo.raw  # read once by take() or wait(), for the count here and the node's check
                if fifo.queue.delivered(sample, raw, fifo.repair is not None):
                    self.fifo_taken += 1
                    self.handed_out += 1
                    self.attachment = raw
                    self.fifo_sample = True
                    return sample
                self._queue_up(fifo, sample)
            return self._get(deadline, drained=True)
        except zenoh.ZError as exc:  # the session was closed under us: no more events
            raise queue.Empty from exc

    def _one_wait(self, fifo: FifoInput) -> Any:
        """``_wait_fifos`` for the one FIFO: its next message, or None once a ring item is in
        local order, a kick came, or the general path must wait (a doze, a bell unanswered, the
        node closing)."""
        if (self._dozy and not self._recovering) or self._bell_unanswered or self._fifos_released:
            return None
        if self.before_wait() and self.spin is not None:
            item = self.spin.poll(self._one_poll)
            if item is not None:
                return None if item is True else item
        return self._sleep_in_fifo(fifo)

    def _one_poll(self) -> Any:
        """The spin's poll on the one-FIFO path: a FIFO message, True once a ring item was
        taken, else None."""
        sample = self.one.take()  # type: ignore[union-attr]
        if sample is not None:
            return sample
        return True if self._take_ring() else None

    def _take_ring(self) -> bool:
        """Take a ring item, if there is one, into local order (``_file``)."""
        item = self._try_recv()
        if item is None:
            return False
        self._file(item)
        return True

    def _file(self, item: Any) -> None:
        """A ring item into local order, behind what the FIFOs hold (see ``_fifos_first``)."""
        start = len(self._local)
        self._take(item)
        self._fifos_first(start)

    def _queue_up(self, fifo: FifoInput, sample: Any) -> int:
        """Count a FIFO message and serve it by its input's tokens, in local order; how many."""
        if n := fifo.queue_up(sample):
            self._local.extend([fifo.queue] * n)
            self.fifo_taken += n
        return n

    def _get(self, deadline: float | None, blocking: bool = True, drained: bool = False) -> Any:
        """``get()`` in general: markers, queued tokens, floods to trim, deadlines.
        ``drained``: the caller has just emptied the ring into local order."""
        local = self._local
        pending = self._pending
        fifos = self._fifos
        while True:
            try:
                polled = False
                start = len(local)
                if drained:
                    drained = False
                elif fifos:  # the ring, else the FIFOs, else the tokens, else wait
                    sample = self._try_recv()
                    if sample is not None:
                        self._take(sample)
                    elif not (polled := self._poll_fifos()):
                        if pending:  # its marker is still on its way (or was pushed out of the ring)
                            self._served_early += 1
                            return self._token_out(pending.popleft())
                        if not blocking:
                            self.before_wait()
                            raise queue.Empty
                        polled = True
                        if (sample := self._wait_fifos()) is not None:
                            self._take(sample)
                            polled = False
                elif pending or not blocking:
                    sample = self._try_recv()
                    if sample is None:
                        if pending:  # its marker is still on its way (or was pushed out of the ring)
                            self._served_early += 1
                            return self._token_out(pending.popleft())
                        self.before_wait()
                        raise queue.Empty
                    self._take(sample)
                else:
                    self._take(self._wait())
                while (sample := self._try_recv()) is not None:  # drain: see the module docstring
                    self._take(sample)
                    polled = False
                run, self._run = self._run, 0  # the ring is empty
                if fifos and not polled:  # the ring gave something
                    self._fifos_first(start)
            except zenoh.ZError as exc:  # the session was closed under us: no more events
                raise queue.Empty from exc
            local = self._local
            if local:
                primary = self.primary
                if primary is not None:  # else only tokens: nothing arrived to count, nothing to trim
                    if self._arrived:
                        # a gap in a run shorter than the ring was lost on the way, not pushed out
                        primary.arrived_all(self._arrived, ring_full=run >= self._ring_size)
                        self._arrived = []
                    if len(local) > self._primary_size:
                        self._trim(primary)
                        local = self._local
                    primary.settle()
                return local.popleft()
            if deadline is not None and _monotonic() >= deadline:
                raise queue.Empty

    def _wait(self) -> Any:
        """Block for the next ring item, after ``before_wait`` (and a spin, see the module docstring)."""
        if self.before_wait() and self.spin is not None:
            item = self.spin.poll(self._try_recv)
            if item is not None:
                return item
        return self._sleep()

    def _poll_fifos(self) -> bool:
        """Take one message from each FIFO input that has one (in local order, as its queue's
        token); whether any came."""
        got = False
        for fifo in self._fifos:
            if (sample := fifo.take()) is not None and self._queue_up(fifo, sample):
                got = True
        if got:
            self._bell_unanswered = False
        return got

    def _fifos_first(self, start: int) -> None:
        """The ring gave items (from ``start`` in local order): what the FIFOs hold goes before
        them. A sender's message on a block output that it sent before one on another output
        is in the FIFO by the time the later one is in the ring (one link, in order), so a
        ``done`` sent after the data never overtakes it. At most a FIFO's size per input: a
        flood refilling it must not keep the ring waiting."""
        local = self._local
        tokens = []
        for fifo in self._fifos:
            for _ in range(fifo.queue.size + 1):
                if not (n := fifo.poll()):
                    break
                tokens.extend([fifo.queue] * n)
        if tokens:
            self.fifo_taken += len(tokens)
            self._bell_unanswered = False
            if start >= len(local):
                local.extend(tokens)
            else:
                for i, token in enumerate(tokens):
                    local.insert(start + i, token)

    def _poll_all(self) -> Any:
        """The spin's poll with FIFO inputs: a ring item, True if a FIFO gave one, else None."""
        item = self._try_recv()
        if item is not None:
            return item
        return True if self._poll_fifos() else None

    def _wait_fifos(self) -> Any:
        """``_wait`` for a node with FIFO inputs: the next ring item, or None once a FIFO
        gave a message (it is in local order). The bells ring only while the thread sleeps."""
        if self.before_wait() and self.spin is not None:
            item = self.spin.poll(self._poll_all)
            if item is not None:
                return None if item is True else item
        if self._bell_unanswered:
            # A bell rang, and the FIFO was still empty: Zenoh calls the bell and fills the FIFO
            # in an order of its own, so the message is on its way (bounded wait: a FIFO
            # released meanwhile never gets it).
            self._bell_unanswered = False
            end = _monotonic() + BELL_PATIENCE
            while _monotonic() < end:
                if self._poll_fifos():
                    return None
                sched_yield()
        if self._fifos_released:  # the node is closing: nothing more comes through the FIFOs
            return self._sleep()
        # What Zenoh's recovery puts in a recovering FIFO rings no bell, and once that FIFO is
        # full, Zenoh's thread waits for room before it calls any bell: a thread asleep in the
        # ring would never wake. So it sleeps in a lone recovering FIFO, even past DOZE_AFTER,
        # and with several FIFOs looks at them every RECOVERY_LOOK.
        if len(self._fifos) == 1 and (not self._dozy or self._recovering):
            fifo = self._fifos[0]
            if (sample := self._sleep_in_fifo(fifo)) is not None:
                self._queue_up(fifo, sample)
            return None
        bells = self._bells
        assert bells is not None
        bells.arm()
        try:
            if self._poll_fifos():  # came before the bells were there
                return None
            return self._sleep(RECOVERY_LOOK if self._recovering else None)
        finally:
            bells.disarm()

    def _sleep_in_fifo(self, fifo: FifoInput) -> Any:
        """Block in the one FIFO input's channel (see :mod:`dora_zenoh.node.fifo`): its message
        (not counted yet), or None once a ring item is in local order or a kick came (the ring
        has something: the caller looks).

        What reaches the ring meanwhile must kick the FIFO. A primary input's data gets there from
        Zenoh: a callback subscriber on the ring's key (the watcher) kicks (see ``_watcher``).
        Without a primary input every ring item comes from ``_ring``, which kicks itself: no
        watcher at all (docs/machines.md, the block read path). Either way the flag is set
        before the ring is looked at, and a ringer looks at the flag after its marker is in:
        one of the two sees the other."""
        self._kick_ready = True
        self.fifo_sleeps += 1
        watch = None
        if self._watch_ring:
            try:
                watch = self._watcher()
            except zenoh.ZError:  # the session is closing: recv() says so
                self._kick_ready = False
                self._file(self._sleep())
                return None
        try:
            if self._take_ring():  # what reached the ring before the watcher (or the flag)
                return None
            # No second look at the FIFO: the caller just looked, and wait() returns what came
            # since. take() would swallow a kick sent after the look at the ring as a stale one,
            # and the thread would sleep on with that token unserved (test_fifo -k lands).
            self._doze_at = doze_at = _monotonic() + DOZE_AFTER
            self._alarm.arm_doze(doze_at)
            return fifo.wait()
        finally:
            self._kick_ready = False
            _undeclare(watch)

    def _watcher(self) -> Any:
        """The ring's watcher for this sleep: one declared for it (returned: the caller
        undeclares it after the sleep), or None when the one kept from earlier sleeps serves.

        Declaring and undeclaring a subscriber per sleep costs the node's thread ~10 µs a
        message on a cold CPU (docs/design/inbox.md), and a watcher kept declared runs Python
        on Zenoh's thread (the GIL) for every primary message, also while the node is busy.
        So one is kept while the primary input stays quiet (nothing arrived since the last
        sleep: a ``done``, a command input), and dropped for per-sleep ones once it is not, or
        once ``_one_get`` finds something in the ring."""
        primary = self.primary
        count = primary.received if primary is not None else 0
        quiet, self._quiet_mark = count == self._quiet_mark, count
        if quiet:
            if self._kept_watch is None:
                with self._watch_lock:
                    if not self._fifos_released:
                        self._kept_watch = self._declare_watch()
            return None
        if self._kept_watch is not None:
            self._drop_kept_watch()
        return self._declare_watch()

    def _drop_kept_watch(self) -> None:
        with self._watch_lock:
            kept, self._kept_watch = self._kept_watch, None
        _undeclare(kept)

    def _declare_watch(self) -> Any:
        self.watches += 1
        return self._session.declare_subscriber(self._key, zenoh.handlers.Callback(self._kick, indirect=False))

    def _kick(self, _sample: Any = None) -> None:
        """Kick the thread if it sleeps in its FIFO, once per sleep: the ring's watcher (a Zenoh
        callback), or ``_ring`` when there is no watcher."""
        if self._kick_ready:
            self._kick_ready = False
            self._fifos[0].kick()

    def _sleep(self, look_within: float | None = None) -> Any:
        """Block for the next ring item: in ``recv()``, or dozing once a wait lasted DOZE_AFTER.
        ``look_within``: an alarm ends the wait that soon (the caller looks at its FIFOs; no doze)."""
        if self._dozy:
            self._dozy = False
            item = self._doze() if look_within is None else None
            if item is not None:
                self._doze_at = float("inf")  # a later alarm (a next(timeout)'s) must not start a doze
                return item
        self._doze_at = doze_at = _monotonic() + DOZE_AFTER
        self._alarm.arm_doze(doze_at if look_within is None else _monotonic() + look_within)
        return self._recv()

    def _doze(self) -> Any:
        """Wait for the next ring item on a Python lock that a callback subscriber on the
        ring's key releases (see the module docstring); None if the bell rang before the
        item reached the ring (the caller then takes it with ``recv()``)."""
        bell = self._bell
        bell.acquire(False)  # locked: only what arrives from now on releases it
        self.dozes += 1
        try:
            sub = self._session.declare_subscriber(
                self._key, zenoh.handlers.Callback(self._ring_bell, self._ring_bell, indirect=False))
        except zenoh.ZError:  # the session is closed: recv() says so
            return None
        try:
            item = self._try_recv()  # what arrived before the bell was declared
            if item is None:
                bell.acquire()
                item = self._try_recv()
            return item
        finally:
            try:
                sub.undeclare()
            except zenoh.ZError:
                pass

    def _ring_bell(self, _sample: Any = None) -> None:
        """The doze's callback (and its drop: a closed session wakes the thread too)."""
        ring_bell(self._bell)

    def _take(self, sample: Any) -> None:
        """File one ring item in arrival order: a primary sample, or the token of a marker.

        The attachment tells both apart (one Zenoh getter on the hot path), and carries
        the sequence number the primary input counts arrivals and drops by: the caller
        hands those of a whole drained batch to ``arrived_all`` at once.
        """
        self._run += 1
        att = sample.attachment
        raw = att.to_bytes() if att is not None else b""
        if raw[:3] == MARK and sample.kind == _DELETE:
            if raw == MARK:
                if self._served_early:
                    self._served_early -= 1  # this marker's token went out already
                elif self._pending:
                    self._local.append(self._token_out(self._pending.popleft()))
            elif raw == MARK_FIFO:
                self._bell_unanswered = True  # until a FIFO gives a message
            elif _monotonic() >= self._doze_at:
                self._dozy = True  # the wait lasted DOZE_AFTER: the next one dozes
            return  # an alarm: the caller looks at the clock
        primary = self.primary
        if primary is not None and not self._primary_ended:
            self._arrived.append(raw)
            self._local.append(sample)

    def _token_out(self, token: Any) -> Any:
        """A token leaves the queue in arrival order. The primary input's own token is its
        end of stream: what the ring held before it is delivered, what comes after is not."""
        if token is self.primary:
            self._primary_ended = True
        return token

    def _trim(self, primary: InputQueue) -> None:
        """Drop the oldest primary samples beyond queue_size (the drop_oldest policy)."""
        local = self._local
        samples = sum(1 for item in local if item.__class__ is _SAMPLE)
        excess = samples - primary.size
        if excess <= 0:
            return
        primary.count_dropped(excess)
        kept: deque = deque()
        for item in local:
            if excess and item.__class__ is _SAMPLE:
                excess -= 1
                continue
            kept.append(item)
        self._local = kept

    def unread_primary(self) -> int:
        """At exit: how many of the primary input's messages were taken from the ring and not
        read; the ring's rest (none once its INPUT_CLOSED is queued), taken out now, is added to
        its ``unread``."""
        primary = self.primary
        if primary is None:
            return 0
        local = sum(1 for item in self._local if item.__class__ is _SAMPLE)
        if self._primary_ended:
            return local
        waiting = 0
        try:
            for _ in range(self._primary_size + len(self._pending) + 1):  # (a sender still putting: bounded)
                sample = self._try_recv()
                if sample is None:
                    break
                att = sample.attachment
                if not (sample.kind == _DELETE and att is not None and att.to_bytes()[:3] == MARK):
                    waiting += 1
        except Exception:  # noqa: BLE001 - closed, or the node's thread is in recv(): not counted
            pass
        primary.unread += waiting
        return local

    def put_back(self, item: Any) -> None:
        """Make ``item`` the next thing ``get()`` returns (an event taken out only to look
        whether one was there: ``Node.is_empty``, a cancelled ``recv_async``)."""
        self._local.appendleft(item)

    def close(self) -> None:
        """Stop ringing and the alarm thread (before the session closes). Returns once no
        other thread is inside Zenoh through this inbox (timers, the alarm, callbacks)."""
        self.release_fifos()  # first: a kick waiting for room in a FIFO may hold the gate
        with self._gate:
            self._closed = True
        self._alarm.stop()


def ring_bell(bell: threading.Lock) -> None:
    """Wake a thread blocked on ``bell`` (a lock it holds and waits to acquire again); once is
    enough until it is heard (then the lock is released already)."""
    try:
        bell.release()
    except RuntimeError:  # rung already, not yet heard
        pass


def _undeclare(sub: Any) -> None:
    """Undeclare a watcher, if any (the session may be closing)."""
    if sub is not None:
        try:
            sub.undeclare()
        except zenoh.ZError:
            pass


def _nothing() -> bool:
    """``before_wait`` of a node that has nothing to do before it waits (and never sends)."""
    return False


class _Alarm(threading.Thread):
    """Wakes the node's thread when a ``next(timeout)`` deadline passes, or when a
    blocking wait has lasted ``DOZE_AFTER`` (the thread then dozes).

    Arming costs the caller two attribute writes; the thread is only notified when a
    deadline comes *earlier* than the one it sleeps towards, so a node calling
    ``next(timeout=T)`` in a loop does not wake this thread per message, and under
    traffic it wakes about once per ``DOZE_AFTER``.
    """

    def __init__(self, ring: Any) -> None:
        super().__init__(name="dora-zenoh-alarm", daemon=True)
        self._fire = ring
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._doze: float | None = None
        self._sleeping_until = float("inf")
        self._stopped = False
        self._launched = False

    def arm(self, deadline: float) -> None:
        """Ring at ``deadline`` (a ``next(timeout)``'s)."""
        self._deadline = deadline
        self._wake_for(deadline)

    def arm_doze(self, at: float) -> None:
        """Ring at ``at`` unless armed again before (each blocking wait does)."""
        self._doze = at
        self._wake_for(at)

    def _wake_for(self, deadline: float) -> None:
        if not self._launched:
            self._launched = True
            self.start()
        elif deadline < self._sleeping_until:
            with self._cond:
                self._cond.notify()

    def run(self) -> None:
        with self._cond:
            while not self._stopped:
                self._sleeping_until = float("inf")  # awake: arm() must notify (it waits for the lock)
                deadline, doze = self._deadline, self._doze
                soonest = min((t for t in (deadline, doze) if t is not None), default=None)
                if soonest is None:
                    self._cond.wait()
                    continue
                left = soonest - time.monotonic()
                if left <= 0:  # clear the one that rang (unless re-armed meanwhile), then ring
                    if deadline == soonest and self._deadline == deadline:
                        self._deadline = None
                    if doze == soonest and self._doze == doze:
                        self._doze = None
                    self._fire(MARK_ALARM)
                    continue
                self._sleeping_until = soonest
                self._cond.wait(left)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

