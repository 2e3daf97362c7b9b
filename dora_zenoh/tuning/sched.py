"""A short scheduler slice for the node's own thread, so that Zenoh's threads don't preempt it.

Why: when a node calls ``send_output``, Zenoh wakes its sending thread. Linux's EEVDF
scheduler (6.6 and later) lets a woken thread preempt the running one when its virtual
deadline comes first, and with equal slices it often does: the node's thread was
switched out in the middle of handling its message and back in afterwards, two extra
context switches per message (one per round trip in a ping-pong, against one in 20 for
plain zenoh-python doing less Python per message). A thread that asks for a shorter
slice than the default (``sched_setattr`` with ``sched_runtime``, honoured since Linux
6.12 for normal threads) has the earlier deadline, so Zenoh's thread waits the few
microseconds until the node's thread blocks in ``next()``; it still runs at once on
any idle CPU. Nothing else changes: same policy, same nice value, same CPU share; at
most, a busy node's thread is time-sliced more finely when others want its CPU.

Measured on a 2-vCPU VM (kernel 6.18; ``scripts/bench.py --cases latency``, runs with
``DORA_ZENOH_NODE_SLICE_US=0`` interleaved): 8 B one-way p50 with every process on one
CPU 30.7-31.9 -> 21.3-22.0 µs; on both CPUs, median of 6 runs 71.7 -> 51.8 µs. With four
CPU hogs and a ping every millisecond, p99 stayed in the same range (97-385 vs 55-562 µs
over 4 runs each), unlike ``SCHED_BATCH`` for Zenoh's threads (same gain, but p99s of
1.5-3.5 ms under that load). Two CPU-bound processes sharing a CPU did the same work
with either slice (ticks, not slices, switch them).

The runner asks for it in every node's environment (``DORA_ZENOH_NODE_SLICE_US``,
default 300 µs; ``0`` leaves the kernel's default). Best effort: on other systems,
older kernels, or where the call is not allowed, nothing happens.

The other side of the same trade: a node that sends and then goes on computing
instead of waiting. The kernel often queues Zenoh's woken sending thread on the
node's own CPU (on the VM above it does so even with the other CPU idle), and the
short slice keeps the node's thread in front of it, so the message sat there until
the slice ran out or a clock tick came (HZ 250: 4 ms). So ``send_output`` yields the
CPU once after it has handed Zenoh a message (``sched_yield``: Zenoh's thread runs
now if it was queued behind us; a no-op otherwise), at most once per 200 µs, so that
a flood still leaves Zenoh whole batches to send (yielding after every send halved an
8 B flood). ``scripts/bench.py --compare --cases busy`` (send 8 B on a 20 ms timer,
then 10 ms of busy loop), 4 runs interleaved with ``DORA_ZENOH_SEND_YIELD_US=0``:
receiver's delay p90 273-404 vs 1,712-2,339 µs, p99 392-2,220 vs 3,725-5,821 µs
(dora-rs: 3,235-4,822 / 7,180-8,353); ping-pong and floods unchanged within noise
(README, "Performance"). The runner sets ``DORA_ZENOH_SEND_YIELD_US`` (default 200;
``0`` never yields) like the slice.

Last, the wait itself. A message's way from one node to another crosses threads three
times (sending node -> its Zenoh thread -> the receiver's Zenoh thread -> the receiving
node), and each crossing onto an idle CPU wakes that CPU first. On a virtual machine
whose idle vCPUs halt, that costs ~20 µs per wake-up, and whether a message meets one,
two or none of them is placement luck: the same ping-pong took 40-50 or 80-110 µs
one-way from run to run. A node that has just sent something and now waits for the
next event (a request waiting for its reply, a stage waiting for its next input in a
busy stream) therefore first polls for it for up to ``DORA_ZENOH_SPIN_US`` µs (default
100), yielding the CPU between polls, so its CPU stays awake and its own Zenoh thread
can run on it; only then does it block. The cost is CPU time, only while a reply is
that close: a spin that runs out makes the node skip the next 1, 3, 7, ... 255 spins,
so a node whose inputs come later than that (a 30 Hz camera stage, a timer) almost
never spins, and a node that sent nothing (a sink) never does; nor does a node confined
to a single CPU (``cpu_affinity``, ``taskset``), where it would only delay the threads
it waits for. A node waiting with nothing to come uses no CPU, as before. Polling
without yielding was worse than not polling at all (8 B 69-74 µs one-way against
41-68): the node's own Zenoh thread, queued on its CPU, could not send. Measured on the
VM above with the shared ``compare.py`` (6 runs interleaved with
``DORA_ZENOH_SPIN_US=0``): 8 B one-way p50 26-49 µs against 43-65, dora-zenoh/dora-rs
0.28-0.49 against 0.49-0.71 at 8 B; the ping process's CPU per round trip stays about
what waking costs (``bench.py --cases latency``: 40-90 µs against 51-64 at 8 B); with
one or two CPU hogs running, 23-46 µs against 22-42.
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
    delays the threads it waits for (``bench.py --cpus 0``: 8 B one-way 54 µs, against 23
    without spinning), so a node confined to one CPU blocks at once."""
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
