"""``queue_policy: block`` inputs read from Zenoh FIFO channels, by the node's own thread.

Why: a block input fed by a Python callback costs a GIL hand-over per message on
Zenoh's thread, a marker to wake the node, and a node polling after a send cannot
catch it (the callback needs the GIL the polling thread holds). A Zenoh
``FifoChannel`` is filled in Rust: when it is full, Zenoh's thread waits in Rust for
room (the back-pressure ``block`` promises, as the callback's wait did), and the
node's thread takes messages with ``try_recv``, in its poll after a send too, with
no Python on Zenoh's side (measured: docs/design/inbox.md).

Zenoh's channels cannot be waited on together (one handler per subscriber), so:

- a node with one FIFO input sleeps in that FIFO (``FifoInput.wait``): a block message
  wakes it from Rust, as a ``drop_oldest`` one wakes a thread asleep in the ring.
  What would have woken it through the ring (the primary input's data, the markers of
  timers, STOP, other inputs) *kicks* the FIFO once while it sleeps there (a session-local
  delete): the inbox's ``_ring`` after a marker, and for the primary input's data (which
  Zenoh puts in the ring) a callback subscriber on the ring's key, declared for the sleep;
- a node with several (or one that dozes) sleeps in the ring, and ``Bells`` puts a
  callback subscriber on each FIFO input's key that wakes it with one marker.

Either watcher exists only while the thread sleeps: a busy node (one that finds a
message when it looks) runs no Python on Zenoh's threads for a block message.
Declaring a second subscriber on a key the session already subscribes to stays in
the session (a few µs, nothing on the wire: docs/design/inbox.md, Dozing).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import zenoh

if TYPE_CHECKING:
    from collections.abc import Callable

    from dora_zenoh.node.inputs import InputQueue


KICK = b"@dzk"  # attachment of a kick: wakes a thread asleep in the FIFO (never data)
_DELETE = zenoh.SampleKind.DELETE
_LOCAL = zenoh.Locality.SESSION_LOCAL
RELEASE_PATIENCE = 5.0  # s a closing node empties a recovering FIFO while its subscriber is undeclared


class FifoInput:
    """One block input's FIFO channel subscriber; read only by the node's thread.

    The channel holds ``queue_size`` + 1: the one more is room for a kick (see ``kick``).
    ``declare`` makes the subscriber from the channel (default: a plain Zenoh one; a block
    input from another machine gets dora_zenoh.node.replay's recovering one). A FIFO it fills
    is ``recovering``: what Zenoh's recovery fetches enters it without a bell ringing (the
    bells are plain subscribers, which see live samples only), so the inbox never sleeps
    long without looking at it (``Inbox._wait_fifos``).
    """

    __slots__ = ("queue", "key", "recovering", "repair", "raw", "_session", "_sub", "_try_recv", "_recv")

    def __init__(self, session: zenoh.Session, key: str, queue: InputQueue,
                 declare: Callable[[Any], Any] | None = None) -> None:
        self.queue = queue
        self.key = key
        self._session = session
        self.recovering = declare is not None
        channel = zenoh.handlers.FifoChannel(queue.size + 1)
        self._sub: Any = declare(channel) if declare else session.declare_subscriber(key, channel)
        self._try_recv = self._sub.try_recv
        self._recv = self._sub.recv
        self.repair = getattr(self._sub, "repair", None)  # see dora_zenoh.node.replay.CacheRepair
        self.raw: bytes | None = None  # the attachment's bytes of the message take() or wait() just gave

    def poll(self) -> int:
        """Take one message if one is there, into the input's queue; how many more items the
        node has to serve (more than one when a gap before it was fetched again: ``_serve``)."""
        sample = self.take()
        return 0 if sample is None else self.queue_up(sample)

    def take(self) -> Any:
        """The next message (kicks aside), or None; not counted yet (``queue_up`` or
        ``Inbox``'s one-FIFO path does). ``queue.busy`` says whether the FIFO may hold more (a
        close for a sender that vanished waits until the node found it empty: see
        ``close_when_quiet``)."""
        try:
            while (sample := self._try_recv()) is not None:
                att = sample.attachment  # _kick_or_keep, inlined: it runs per message
                raw = self.raw = att.to_bytes() if att is not None else None
                if raw != KICK or sample.kind != _DELETE:
                    break
        except zenoh.ZError:  # released (the node is closing) or the session closed
            sample = None
        self.queue.busy = sample is not None
        return sample

    def _kick_or_keep(self, sample: Any) -> bool:
        """Whether ``sample`` is a kick; if not, its attachment's bytes go in ``raw`` (read once:
        the inbox counts the message by them and the node checks them)."""
        att = sample.attachment
        raw = self.raw = att.to_bytes() if att is not None else None
        return raw == KICK and sample.kind == _DELETE

    def wait(self) -> Any:
        """Block (in Rust, GIL released) until a message (returned, not counted yet) or a kick
        (None) comes. Raises zenoh.ZError once the session closed."""
        sample = self._recv()
        if self._kick_or_keep(sample):
            return None
        self.queue.busy = True
        return sample

    def queue_up(self, sample: Any) -> int:
        """Count ``sample`` and queue it for the tokens the node serves; how many items it
        queued (see ``_serve``)."""
        return self.queue.taken(sample) if self.repair is None else self._serve(sample)

    def _serve(self, sample: Any) -> int:
        """Queue ``sample`` of a recovering FIFO, after what its sender's cache still holds of a
        gap before it (``repair``); what the FIFO receives meanwhile is served after it, the same
        way. Returns how many items were queued."""
        q, repair = self.queue, self.repair
        if q.gap_before(sample) is None:  # the common case, kept short
            return q.taken(sample)
        queued = 0
        later = deque([sample])
        while later:
            sample = later.popleft()
            gap = q.gap_before(sample)
            if gap is not None:
                for old in repair.fetch(sample, *gap, meanwhile=lambda: self._take_all(later)):  # type: ignore[union-attr]
                    queued += q.taken(old)
            queued += q.taken(sample)
        return queued

    def _take_all(self, into: deque) -> None:
        """Move what the FIFO holds now into ``into`` (kicks aside: the thread is awake)."""
        try:
            while (sample := self._try_recv()) is not None:
                if not (sample.kind == _DELETE and _is_kick(sample)):
                    into.append(sample)
        except zenoh.ZError:  # released or closed: nothing more will come
            pass

    def kick(self) -> None:
        """Wake a thread in ``wait``: a session-local delete that only this session's subscribers
        of the key see. It waits in Rust while the channel is full (a race the one slot more
        makes rare: data filled it after the thread woke), until the node takes one or
        ``release`` undeclares the subscriber (measured: that lets it go)."""
        try:
            self._session.delete(self.key, attachment=KICK, allowed_destination=_LOCAL)
        except zenoh.ZError:  # the session is closing
            pass

    def release(self) -> None:
        """Undeclare the subscriber: a Zenoh thread waiting for room is let go, and nothing more
        is queued (the node is closing). A full FIFO whose subscriber is still declared makes
        ``session.close()`` time out (measured), so the node does this before it closes.

        A recovering FIFO's undeclare waits for its advanced subscriber's lock, which the Zenoh
        thread flushing what recovery held keeps while it waits for room in this FIFO: the
        undeclare runs on a thread of its own while this one empties the FIFO (what comes now
        is not served: the node is closing). Undeclared from the node's thread alone, a reader
        that stopped during a burst hung until it was killed (docs/design/outage.md)."""
        sub, self._sub = self._sub, None
        try_recv, self._try_recv = self._try_recv, _released
        if sub is None:
            return
        if not self.recovering:
            self.queue.unread += _count_waiting(try_recv, self.queue.size + 1)
            self._undeclare(sub)
            return

        def empty() -> None:
            try:
                while try_recv() is not None:
                    pass
            except Exception:  # closed, or the node's thread is in recv(): the kicks wake it
                pass

        def undeclare(done: Callable[[], None]) -> None:
            self._undeclare(sub)
            done()

        while_emptying(undeclare, empty, RELEASE_PATIENCE, "dora-zenoh-release")

    def _undeclare(self, sub: Any) -> None:
        for _ in range(100):
            try:
                sub.undeclare()
                return
            except zenoh.ZError:
                return
            except Exception:  # "Already borrowed": the node's thread is in wait(): wake it, again
                self.kick()
                time.sleep(0.001)


def while_emptying(work: Callable[[Callable[[], None]], None], empty: Callable[[], None], patience: float,
                   name: str) -> None:
    """Run ``work(done)`` on a thread of its own, calling ``empty()`` on this one until ``work``
    calls ``done`` (or ``patience`` seconds passed). For a Zenoh call that may wait for a lock
    that a Zenoh thread holds while it waits for room in a FIFO only this thread empties
    (a recovering FIFO's flush: docs/design/outage.md)."""
    finished = threading.Event()
    threading.Thread(target=work, args=(finished.set,), name=name, daemon=True).start()
    deadline = time.monotonic() + patience
    while not finished.wait(0.002) and time.monotonic() < deadline:
        empty()


def _count_waiting(try_recv: Callable[[], Any], most: int) -> int:
    """How many messages (kicks aside) wait in a FIFO, taken out of it: at most ``most`` (its
    room: a sender still putting must not keep this going)."""
    count = 0
    try:
        for _ in range(most):
            sample = try_recv()
            if sample is None:
                break
            if not (sample.kind == _DELETE and _is_kick(sample)):
                count += 1
    except Exception:  # noqa: BLE001 - closed, or the node's thread is in recv(): not counted
        pass
    return count


def _released() -> None:
    """``try_recv`` of a released FIFO: never anything."""
    return None


def _is_kick(sample: Any) -> bool:
    att = sample.attachment
    return att is not None and att.to_bytes() == KICK


class Bells:
    """While the node's thread sleeps: a callback subscriber per FIFO key that wakes it once.

    ``ring`` puts a marker on the node's ring (``Inbox._ring``); it is called at most once
    per ``arm`` (later messages find the node awake). ``rang`` says whether it was.
    """

    def __init__(self, session: zenoh.Session, keys: list[str], ring: Callable[[], None]) -> None:
        self._session = session
        self._keys = sorted(set(keys))
        self._ring = ring
        self._subs: list[Any] = []
        self._armed = False
        self.rang = False
        self.rung = 0  # how many times a bell woke the thread (tests look)

    def arm(self) -> None:
        """Ring on the next message of any FIFO input (the caller then looks at the FIFOs once
        more: a message that came before this is in them, not rung for)."""
        self._armed, self.rang = True, False
        try:
            for key in self._keys:
                self._subs.append(self._session.declare_subscriber(
                    key, zenoh.handlers.Callback(self._on_message, indirect=False)))
        except zenoh.ZError:  # the session is closing: the ring's recv() says so
            pass

    def _on_message(self, _sample: Any) -> None:
        """On Zenoh's thread: wake the node's thread, once."""
        if self._armed:
            self._armed = False
            self.rang = True
            self.rung += 1
            self._ring()

    def disarm(self) -> None:
        """Undeclare the bells (the thread is awake). Safe to call from another thread too."""
        self._armed = False
        subs, self._subs = self._subs, []
        for sub in subs:
            try:
                sub.undeclare()
            except zenoh.ZError:
                pass
