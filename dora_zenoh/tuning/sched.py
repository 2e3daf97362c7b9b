"""How a node's thread shares the CPU with its own Zenoh threads: slice, yield, poll.

Three per-thread settings, each put in every node's environment by the runner (a value
the user set wins) and each turned off by ``0``:

- a short scheduler slice (``DORA_ZENOH_NODE_SLICE_US``, default 300 µs) so that Zenoh's
  sending thread, woken by ``send_output``, does not preempt the node's thread in the
  middle of its message (``sched_setattr``, honoured since Linux 6.12; best effort);
- a yield after handing Zenoh a message (``DORA_ZENOH_SEND_YIELD_US``: at most once per
  200 µs), so that a node that goes on computing does not hold its message back;
- a short poll before blocking (``DORA_ZENOH_SPIN_US``, 100 µs; :class:`Spin`) for a node
  that has just sent something, so that a reply that comes that soon wakes nobody.

The measurements behind each: see docs/design/scheduling.md and docs/design/polling.md.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from dora_zenoh import settings

SLICE_ENV = settings.NODE_SLICE_US.name
DEFAULT_SLICE_US = int(settings.NODE_SLICE_US.node_default or 0)
SEND_YIELD_ENV = settings.SEND_YIELD_US.name
DEFAULT_SEND_YIELD_US = int(settings.SEND_YIELD_US.node_default or 0)
SPIN_ENV = settings.SPIN_US.name
DEFAULT_SPIN_US = int(settings.SPIN_US.node_default or 0)
_MAX_BACKOFF = 8  # after the 8th spin in a row that ran out, skip 255 waits between spins
# sched_setattr(2) has no wrapper in Python's os module; its number per architecture.
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274, "arm64": 274, "riscv64": 274, "armv7l": 380, "i686": 351}
_MIN_SLICE_US, _MAX_SLICE_US = 100, 100_000  # what the kernel accepts (it clamps to this range)


class _SchedAttr(ctypes.Structure):
    """``struct sched_attr``, its first version (48 bytes: no utilisation clamps)."""

    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64)]


def request_slice(slice_us: int) -> bool:
    """Ask for a ``slice_us`` µs slice for the calling thread; whether the kernel took it.

    Only a thread on the normal policy is touched (one that someone put on a real-time
    or batch policy keeps it), and its nice value is kept.
    """
    number = _SCHED_SETATTR.get(platform.machine())
    if slice_us <= 0 or number is None or not sys.platform.startswith("linux"):
        return False
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return False
        nice = os.getpriority(os.PRIO_PROCESS, 0)  # on Linux: this thread's nice value
        us = min(max(slice_us, _MIN_SLICE_US), _MAX_SLICE_US)
        attr = _SchedAttr(size=ctypes.sizeof(_SchedAttr), sched_policy=os.SCHED_OTHER, sched_nice=nice,
                          sched_runtime=us * 1000)
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(number, 0, ctypes.byref(attr), 0) == 0
    except (OSError, AttributeError):
        return False


def slice_from_env() -> int:
    """``$DORA_ZENOH_NODE_SLICE_US`` in µs; 0 (leave the kernel's default) when unset.

    Raises ValueError, with the fix in its message, when it is not a whole number.
    """
    return settings.NODE_SLICE_US.get()


def send_yield_gap_ns() -> int | None:
    """From ``$DORA_ZENOH_SEND_YIELD_US``: the least time between two yields after a send, in
    ns; None (never yield) when unset or 0. (Where the system has no ``sched_yield``, the
    node's yield does nothing.)

    Raises ValueError, with the fix in its message, when it is not a whole number.
    """
    return _ns_or_none(settings.SEND_YIELD_US.get())


def spin_ns_from_env() -> int | None:
    """From ``$DORA_ZENOH_SPIN_US``: how long a node polls before it blocks, in ns; None
    (block at once) when unset or 0.

    Raises ValueError, with the fix in its message, when it is not a whole number.
    """
    return _ns_or_none(settings.SPIN_US.get())


def spin_can_help() -> bool:
    """Whether this thread may run on more than one CPU. On a single CPU a spinning node only
    delays the threads it waits for (see docs/design/polling.md), so it blocks at once."""
    try:
        return len(os.sched_getaffinity(0)) > 1
    except (AttributeError, OSError):  # no affinity on this system: count the CPUs
        return (os.cpu_count() or 1) > 1


class Spin:
    """Polls for the next event a little while before the node's thread blocks (see above).

    ``poll`` runs out after ``budget_ns``; each time it runs out, the following spins are
    skipped with a doubling backoff (1, 3, 7, ... waits), and a spin that catches its
    event ends the backoff. ``attempts``, ``caught`` and ``skipped`` count what happened.
    """

    __slots__ = ("budget_ns", "attempts", "caught", "skipped", "_misses", "_skip")

    def __init__(self, budget_ns: int) -> None:
        self.budget_ns = budget_ns
        self.attempts = 0   # spins run
        self.caught = 0     # spins that got their event
        self.skipped = 0    # spins skipped by the backoff
        self._misses = 0    # spins in a row that ran out
        self._skip = 0      # waits left to skip

    def poll(self, try_recv: Callable[[], Any]) -> Any:
        """What ``try_recv`` returned before the budget ran out, or None (then block)."""
        if self._skip:
            self._skip -= 1
            self.skipped += 1
            return None
        self.attempts += 1
        end = _perf_counter_ns() + self.budget_ns
        while True:
            item = try_recv()
            if item is not None:
                self.caught += 1
                self._misses = 0
                return item
            if _perf_counter_ns() >= end:
                break
            sched_yield()  # Zenoh's thread may be queued on this CPU, behind us
        self._misses = min(self._misses + 1, _MAX_BACKOFF)
        self._skip = (1 << self._misses) - 1
        return None


_perf_counter_ns = time.perf_counter_ns
sched_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: None)  # not on every system


def _ns_or_none(us: int) -> int | None:
    """A duration setting in ns, None for 0 (off)."""
    return us * 1000 if us > 0 else None
