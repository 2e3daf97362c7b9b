"""Is our supervisor gone, or only paused? What a node does when the runner's token goes.

A runner's liveliness token disappears in two cases: its process died (its sockets
close at once, the token goes within milliseconds), or it stopped answering for
longer than Zenoh's lease (SIGSTOP, a debugger, swap storms: ~9 s by default). Only
the first should stop the dataflow. So when the token goes and the runner runs on
this machine, the node looks at the runner's process (pid and start time, so a
reused pid does not count): still there means paused, and the node carries on,
checking a few times a second until the token comes back (Zenoh links again on its
own when the runner resumes) or the process is gone. A node that does stop because
its supervisor was lost says so on stderr with ``LOST_TAG``, which the runner turns
into a failed result (see docs/scale-and-logs.md).
"""
from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

from dora_zenoh.console import say
from dora_zenoh.wire.contract import RunnerIdentity
from dora_zenoh.wire.stderr_tags import LOST_TAG

POLL_S = 0.2  # how often a node looks at a paused runner's process


def identity(pid: int | None = None) -> RunnerIdentity:
    """What a node needs to recognise process ``pid`` (default: this one): host, pid, start."""
    pid = os.getpid() if pid is None else pid
    return RunnerIdentity(socket.gethostname(), pid, start_ticks(pid))


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    try:
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3
    except (IndexError, ValueError):
        return None


def process_alive(ident: RunnerIdentity | None) -> bool | None:
    """Whether the process ``ident`` names still runs (a zombie counts as gone); None when
    this machine cannot tell (not known, another host, no /proc)."""
    if ident is None or ident.host != socket.gethostname():
        return None
    pid = ident.pid
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    rest = stat[stat.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return False
    return ident.start is None or start_ticks(pid) == ident.start


class SupervisorWatch:
    """Follows the runner's token for one node; calls ``on_lost(reason)`` once, when the
    supervisor is really gone."""

    def __init__(self, node_id: str, ident: RunnerIdentity | None, on_lost: Callable[[], None]) -> None:
        self._node_id = node_id
        self._ident = ident
        self._on_lost = on_lost
        self._present = threading.Event()
        self._fired = False
        self._watching = False
        self._lock = threading.Lock()

    def token(self, present: bool) -> None:
        """The runner's token came (True) or went (False). Called on a Zenoh thread: never blocks."""
        if present:
            self._present.set()
            return
        self._present.clear()
        alive = process_alive(self._ident)
        if alive is None:
            self._lost("its supervisor's link closed and this machine cannot see the supervisor's process")
        elif not alive:
            self._lost(f"its supervisor (pid {self._pid}) has exited")
        else:
            with self._lock:
                if self._watching:
                    return
                self._watching = True
            threading.Thread(target=self._watch, name="dz-supervisor", daemon=True).start()

    @property
    def _pid(self) -> int | None:
        return self._ident.pid if self._ident is not None else None

    def _watch(self) -> None:
        """The runner is unreachable but its process exists (paused): wait for either end."""
        try:
            while not self._present.wait(POLL_S):
                if not process_alive(self._ident):
                    self._lost(f"its supervisor (pid {self._pid}) has exited")
                    return
        finally:
            with self._lock:
                self._watching = False

    def _lost(self, reason: str) -> None:
        with self._lock:
            if self._fired:
                return
            self._fired = True
        say(f"{LOST_TAG} node '{self._node_id}' stops: {reason}")
        self._on_lost()
