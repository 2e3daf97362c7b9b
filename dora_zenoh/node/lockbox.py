"""The inbox of a node that waits for nothing from Zenoh itself: a Python lock, and its
timers ticked by the node's own thread.

A node with no primary input and no FIFO input (a source on a timer, the commonest shape;
a node whose only other inputs are callback-fed) would wait on a Zenoh ring that only ever
carries its own markers: each timer tick woke the timer thread, which put a marker through
Zenoh, which woke the node's thread. Here the node's thread sleeps on a lock until its next
tick is due (or a callback releases the lock) and makes the tick itself: one wake-up per
tick, no timer thread, no Zenoh call. Measured: docs/design/inbox.md (Nodes on timers only).

It offers what :class:`dora_zenoh.node.inbox.Inbox` offers the node (``get``, ``put``,
``urgent``, ``put_back``, ``before_wait``, ``spin``, ``close``), so the node does not know
which one it has. Ticks behave as the timer thread's: one per period, drift-free, queued in
the timer input's queue; deadlines that passed while the node was busy are queued as the
thread would have queued them (up to the queue's size; the rest are counted as dropped).
"""
from __future__ import annotations

import heapq
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dora_zenoh.node.inbox import _nothing, ring_bell
from dora_zenoh.node.inputs import timer_heap

if TYPE_CHECKING:
    from dora_zenoh.node.inputs import InputQueue
    from dora_zenoh.tuning.sched import Spin

_monotonic_ns = time.monotonic_ns


class LockInbox:
    """The node thread's single wait point when nothing reaches it through a Zenoh ring."""

    primary = None       # no input is read from a ring (see Inbox)
    one = None           # no FIFO input (see Inbox)
    fifo_sample = False
    has_fifos = False
    attachment = None    # (Inbox's: the attachment of a sample get() returned; never one here)

    def __init__(self, timers: list[InputQueue]) -> None:
        self._pending: deque = deque()  # tokens from put(), oldest first
        self._local: deque = deque()    # put back (put_back), served first
        self.urgent: Any = None         # a token get() hands out before anything else (a late STOP)
        self._bell = threading.Lock()   # released by put(): the node's thread sleeps on it
        self._bell.acquire()
        self._closed = False
        self._timers = timers
        # (next deadline in monotonic ns, tie-breaker, period, queue); empty until start()
        self._heap: list[tuple[int, int, int, InputQueue]] = []
        self.before_wait: Callable[[], bool] = _nothing  # see Inbox
        self.spin: Spin | None = None
        self.dozes = 0                  # (Inbox counts its dozes; this one never needs to doze)
        self.drained = 0                # (Inbox counts FIFO messages taken while Node() waits: no FIFO here)

    # -- the timers ------------------------------------------------------------------
    def start(self) -> None:
        """The timers tick from now: each one period from now first (called after the start
        gate, as the timer thread is started then)."""
        self._heap = timer_heap(self._timers)

    def stop(self) -> None:
        """No more ticks (the node is closing)."""
        self._heap = []

    def _tick(self) -> int | None:
        """Queue the ticks that are due; when the next one is (monotonic ns), or None."""
        heap = self._heap
        now = _monotonic_ns()
        while heap and heap[0][0] <= now:
            deadline, i, period, timer = heap[0]
            if timer.closed:
                heapq.heappop(heap)
                continue
            due = (now - deadline) // period + 1  # ticks due since the node last looked
            queued = min(due, timer.size)
            wall = time.time_ns() - now
            for k in range(due - queued, due):  # the newest `queued` of them, stamped when due
                timer.put(wall + deadline + k * period)
            if due > queued:  # the timer thread's queue would have dropped these
                with timer.lock:
                    timer.received += due - queued
                    timer.count_dropped(due - queued)
            heapq.heapreplace(heap, (deadline + due * period, i, period, timer))
        return heap[0][0] if heap else None

    # -- any thread ------------------------------------------------------------------
    def put(self, token: Any) -> None:
        """Queue a token and wake the node's thread (from Zenoh callbacks, its own ticks, ...)."""
        self._pending.append(token)
        ring_bell(self._bell)

    def close(self) -> None:
        """No more events: a thread waiting in get() returns (queue.Empty)."""
        self._closed = True
        self._heap = []
        ring_bell(self._bell)

    # -- the node's thread -----------------------------------------------------------
    def get(self, timeout: float | None = None) -> Any:
        """The next token, oldest first (but ``urgent``, once set); raises ``queue.Empty``
        after ``timeout`` s, or once closed."""
        if self.urgent is not None:
            token, self.urgent = self.urgent, None
            return token
        if self._local:
            return self._local.popleft()
        pending = self._pending
        deadline = None if timeout is None else _monotonic_ns() + int(max(timeout, 0.0) * 1e9)
        while True:
            next_tick = self._tick()
            if pending:
                return pending.popleft()
            if self._closed:
                raise queue.Empty
            if timeout is not None and timeout <= 0:
                self.before_wait()
                raise queue.Empty
            wake_at = next_tick
            if deadline is not None and (wake_at is None or deadline < wake_at):
                wake_at = deadline
            if self.before_wait() and self.spin is not None:
                if self.spin.poll(self._poll) is not None:
                    continue
            if wake_at is None:
                self._bell.acquire()
            else:
                left = (wake_at - _monotonic_ns()) / 1e9
                if left > 0:  # (a timer of centuries would overflow the lock's wait)
                    self._bell.acquire(timeout=min(left, threading.TIMEOUT_MAX))
            if deadline is not None and _monotonic_ns() >= deadline and not pending:
                self._tick()
                if not pending:
                    raise queue.Empty

    def _poll(self) -> Any:
        """The spin's poll: True once a token is pending (get() then takes it)."""
        return True if self._pending else None

    def put_back(self, item: Any) -> None:
        """Make ``item`` the next thing ``get()`` returns (see Inbox.put_back)."""
        self._local.appendleft(item)

    # -- what Inbox does with FIFO inputs and its ring: nothing here --------------------
    def drain_fifos(self) -> None:
        pass

    def release_fifos(self) -> None:
        pass

    def unread_primary(self) -> int:
        return 0
