"""This machine's daemon, the one ``up`` starts beside the coordinator: its command line, how
to find it, and the coordinator's duty to start it again when its process dies.

`up` starts it; the coordinator, told where its log goes (``coordinator --daemon-log``, which
only `up` passes), starts it again once its process is gone, so that the nodes it ran come
back by their restart policies without anyone typing `up` (systemd does this for the units
in ``launch/``). A daemon that is merely stalled or cut off is left alone: it reports again
by itself and its nodes never stopped.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import psutil

from dora_zenoh.wire import zconfig

FIRST_DELAY = 0.5  # seconds before the first start again (its reaper is still ending its nodes)
MAX_DELAY = 60.0  # a daemon that keeps dying is started at most this often (doubling up to it)
STEADY = 30.0  # seconds a started daemon must live for the delay to start over


def machine_id() -> str:
    """This machine's id when none is given: $DORA_ZENOH_MACHINE_ID (the daemon's own default),
    else the host's name, which is what a robot's YAML most likely calls it in ``deploy``."""
    import re
    import socket

    from dora_zenoh import settings

    given = settings.MACHINE_ID.get()
    if given:
        return given
    return re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).lstrip(".-") or "local"


def arguments(home: str, coordinator: str) -> list[str]:
    """``dora-zenoh``'s arguments for the daemon of machine ``home``, on a free port beside the
    coordinator's endpoint (same address and protocol: its nodes' hub)."""
    return ["daemon", "--machine-id", home, "--coordinator", coordinator,
            "--listen", zconfig.free_endpoint_beside(coordinator)]


def log_path(coordinator_log: Path, home: str, coordinator: str) -> Path:
    """Where ``up``'s daemon logs: next to the coordinator's log."""
    return coordinator_log.with_name(f"daemon-{home}-{coordinator.rsplit(':', 1)[-1]}.log")


def detached(args: list[str], out: BinaryIO) -> subprocess.Popen:
    """``python -m dora_zenoh ARGS`` in a session of its own, so that it outlives whoever started
    it (how `up` starts the coordinator and this daemon, and the coordinator the daemon again),
    its output into ``out``, without the Zenoh runtime a supervisor gave itself."""
    return subprocess.Popen([sys.executable, "-m", "dora_zenoh", *args], stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                            env=zconfig.child_environ(os.environ))


def start(home: str, coordinator: str, log: Path) -> subprocess.Popen:
    """Start the daemon detached, its output appended to ``log``. OSError if the log cannot be
    opened or the program not started."""
    with open(log, "ab") as out:
        return detached(arguments(home, coordinator), out)


def is_daemon(pid: int, home: str) -> bool:
    """Whether ``pid`` is alive and still a daemon of machine ``home`` (not a pid used again)."""
    try:
        proc = psutil.Process(pid)
        cmd = proc.cmdline()
        return proc.status() != psutil.STATUS_ZOMBIE and "daemon" in cmd and home in cmd
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def find(coordinator: str, home: str) -> int | None:
    """The pid of a daemon of this user for ``home`` and this coordinator, if one is alive."""
    wanted = ["daemon", "--machine-id", home, "--coordinator", coordinator]
    for proc in psutil.process_iter(["uids", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        uids = proc.info["uids"]
        if uids is not None and uids.real == os.getuid() and "dora_zenoh" in cmd \
                and cmd[cmd.index("dora_zenoh") + 1:][:len(wanted)] == wanted:
            return proc.pid
    return None


class Keeper:
    """The coordinator's side: :meth:`lost` when the home daemon is lost; starts it again if
    its process is gone. ``stopping()`` says the coordinator is going down (then never)."""

    def __init__(self, home: str, coordinator: str, log: Path, stopping: Callable[[], bool]) -> None:
        self.home, self.coordinator, self.log = home, coordinator, log
        self._stopping = stopping
        self._busy = threading.Lock()
        self._delay = FIRST_DELAY
        self._started_at = -STEADY

    def lost(self, pid: int | None) -> None:
        """Its daemon (last seen as ``pid``) was lost: start it again in the background if gone."""
        threading.Thread(target=self._again, args=(pid,), name="dz-home", daemon=True).start()

    def _again(self, pid: int | None) -> None:
        if not self._busy.acquire(blocking=False):
            return  # already on it
        try:
            if pid is not None and is_daemon(pid, self.home):
                return  # stalled or cut off, not gone: it reports again by itself
            if time.monotonic() - self._started_at > STEADY:
                self._delay = FIRST_DELAY
            time.sleep(self._delay)
            if self._stopping() or find(self.coordinator, self.home) is not None:
                return  # going down, or someone (`up`) started one meanwhile
            try:
                proc = start(self.home, self.coordinator, self.log)
            except OSError as exc:
                print(f"[dora-zenoh] error: cannot start the daemon of machine '{self.home}' again: {exc}",
                      flush=True)
                return
            threading.Thread(target=proc.wait, name="dz-home-reaper", daemon=True).start()  # our child now
            self._started_at = time.monotonic()
            print(f"[dora-zenoh] the daemon of machine '{self.home}' (pid {pid}) is gone: started it again "
                  f"(pid {proc.pid}, {self._delay:g} s later; its log: {self.log})", flush=True)
            self._delay = min(MAX_DELAY, self._delay * 2)
        finally:
            self._busy.release()
