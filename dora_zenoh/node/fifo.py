"""``queue_policy: block`` inputs read from Zenoh FIFO channels, by the node's own thread.

Why: a block input fed by a Python callback costs a GIL hand-over per message on
Zenoh's thread, a marker to wake the node, and a node polling after a send cannot
catch it (the callback needs the GIL the polling thread holds). A Zenoh
``FifoChannel(queue_size)`` is filled in Rust: when it is full, Zenoh's thread waits
in Rust for room (the back-pressure ``block`` promises, as the callback's wait did),
and the node's thread takes messages with ``try_recv`` - in its poll after a send,
too - with no Python on Zenoh's side (measured: docs/design/inbox.md).

Zenoh's channels cannot be waited on together, and the node's thread waits on one
ring (:mod:`dora_zenoh.node.inbox`). So while, and only while, the thread is about
to sleep, ``Bells`` declares a callback subscriber on each FIFO input's key that
wakes it with one marker; a busy node (one that finds a message when it looks)
never runs Python for a block message. Declaring a second subscriber on a key the
session already subscribes to is local to the session (a few µs, nothing on the
wire: docs/design/inbox.md, Dozing).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import zenoh

if TYPE_CHECKING:
    from collections.abc import Callable

    from dora_zenoh.node.inputs import InputQueue


class FifoInput:
    """One block input's FIFO channel subscriber; polled only by the node's thread."""

    __slots__ = ("queue", "key", "_sub", "_try_recv")

    def __init__(self, session: zenoh.Session, key: str, queue: InputQueue) -> None:
        self.queue = queue
        self.key = key
        self._sub: Any = session.declare_subscriber(key, zenoh.handlers.FifoChannel(queue.size))
        self._try_recv = self._sub.try_recv

    def poll(self) -> bool:
        """Take one message if one is there, into the input's queue; whether the node has one
        more item to serve. ``queue.busy`` says whether the FIFO may hold more (a close for a
        sender that vanished waits until the node found it empty: see ``close_when_quiet``)."""
        q = self.queue
        try:
            sample = self._try_recv()
        except zenoh.ZError:  # released (the node is closing) or the session closed
            sample = None
        if sample is None:
            q.busy = False
            return False
        q.busy = True
        return q.taken(sample)

    def release(self) -> None:
        """Undeclare the subscriber: a Zenoh thread waiting for room is let go, and nothing more
        is queued (the node is closing). A full FIFO whose subscriber is still declared makes
        ``session.close()`` time out (measured), so the node does this before it closes."""
        sub, self._sub = self._sub, None
        self._try_recv = _released
        if sub is not None:
            try:
                sub.undeclare()
            except zenoh.ZError:
                pass


def _released() -> None:
    """``try_recv`` of a released FIFO: never anything."""
    return None


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
