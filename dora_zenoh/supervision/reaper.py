"""Orphan guard: a tiny process that outlives the runner only to clean up after it.

The runner starts it with a pipe on its stdin and writes one line per node it
spawns (``pid create_time``). When the pipe closes, because the runner finished or
was killed (even with SIGKILL), the reaper gives the nodes a moment to notice on
their own (their Zenoh supervisor token is gone), then terminates and kills every
process tree that is still there. So no process of a dataflow outlives its runner.
"""
from __future__ import annotations

import os
import signal
import sys
import time

import psutil

# How long nodes get to notice the runner's death by themselves (they see its token go within
# milliseconds and get STOP), then how long SIGTERM gets before SIGKILL: a dead supervisor's
# dataflow is stopped within about 2 s (issue 19), also a node that never reads its events (a
# sending loop: with 3 s each it outlived the runner by 4.1-5.0 s in a helper's runs).
GRACE_S = 1.0
KILL_AFTER_S = 0.8


def tree(pid: int, create_time: float) -> list[psutil.Process]:
    """The process and its descendants, if ``pid`` is still the process we started."""
    root = _same(pid, create_time)
    if root is None:
        return []
    try:
        return [root] + root.children(recursive=True)
    except psutil.Error:
        return []


def _same(pid: int, create_time: float) -> psutil.Process | None:
    """Process ``pid`` if it is still the one we started (not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - create_time) <= 0.01 else None
    except psutil.Error:
        return None


def running(proc: psutil.Process) -> bool:
    """Alive and not a zombie. An orphan's zombie lasts until init reaps it (here every 1-2 s):
    counted as alive, it made the reaper wait and SIGKILL a node that SIGTERM had ended."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def targets(roots: list[tuple[int, float]]) -> list[psutil.Process]:
    """Every running process of the roots' trees and of their process groups: each node leads a
    session of its own, and its children stay in its group after it died (no tree finds them then)."""
    groups = {pid for pid, _ in roots}
    found = {p.pid: p for pid, ct in roots for p in tree(pid, ct)}
    for proc in psutil.process_iter():
        try:
            if proc.pid not in found and os.getpgid(proc.pid) in groups:
                found[proc.pid] = proc
        except (OSError, psutil.Error):
            pass
    return [p for p in found.values() if running(p)]


def _signal(procs: list[psutil.Process], sig: int) -> None:
    for p in procs:
        try:
            p.send_signal(sig)
        except psutil.Error:
            pass


def _wait(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``procs`` to end; those still running."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def terminate_trees(roots: list[tuple[int, float]], grace: float) -> None:
    """SIGTERM every tree and group, wait up to ``grace`` seconds, SIGKILL what is left."""
    procs = targets(roots)
    _signal(procs, signal.SIGTERM)
    alive = _wait(procs, grace)
    _signal(alive, signal.SIGKILL)
    _wait(alive, grace)


def end_group(pgid: int, grace: float = 1.0) -> bool:
    """SIGTERM what is left of a process group whose leader (a node, started in a session of its
    own) exited: the children it left running; SIGKILL what outlives ``grace``. False if nothing
    was left. (Its pid stays reserved while any process of the group lives: no other group can
    be hit.)"""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return True


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's business
    roots: list[tuple[int, float]] = []
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 2:
            roots.append((int(parts[0]), float(parts[1])))
    # (only the roots are looked at meanwhile: a look at whole trees scans every process, 0.3 s here)
    nodes = [p for pid, ct in roots if (p := _same(pid, ct)) is not None]
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(running(p) for p in nodes):
        time.sleep(0.05)
    terminate_trees(roots, KILL_AFTER_S)


if __name__ == "__main__":
    main()
