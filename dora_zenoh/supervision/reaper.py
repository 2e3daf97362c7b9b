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
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.01:
            return []  # the pid was reused by an unrelated process
        return [proc] + proc.children(recursive=True)
    except psutil.Error:
        return []


def terminate_trees(roots: list[tuple[int, float]], grace: float) -> None:
    """SIGTERM every tree, wait up to ``grace`` seconds, SIGKILL what is left."""
    procs = [p for pid, ct in roots for p in tree(pid, ct)]
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)


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
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(tree(pid, ct) for pid, ct in roots):
        time.sleep(0.1)
    terminate_trees(roots, KILL_AFTER_S)


if __name__ == "__main__":
    main()
