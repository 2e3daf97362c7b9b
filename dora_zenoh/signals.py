"""Signal handlers that cannot deadlock: each action runs on a thread of its own.

A Python signal handler runs in the main thread between two of its bytecodes, maybe while
that thread holds the very lock the handler needs: `replay --loop` hung for good after
Ctrl-C, py-spy showing the handler's ``Event.set`` waiting for the lock that the main
thread's own ``Event.wait`` held (in ``Condition.__exit__``); ``queue.Queue.put`` from a
handler (`run`'s STOP) has the same window. Here the interpreter's C-level handler only
writes the signal's number to a pipe (``signal.set_wakeup_fd``) and a watcher thread runs
the action, which then takes its locks like any other thread.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

_actions: dict[int, Callable[[int], object]] = {}
_lock = threading.Lock()
_watching = False


def _wake_only(signum: int, frame: Any) -> None:
    """The Python-level handler: nothing (a handler must be set for the wakeup byte to be written)."""


def on_signals(action: Callable[[int], object], *signums: int) -> None:
    """Run ``action(signum)`` on the watcher thread whenever one of ``signums`` arrives.
    Call from the main thread (as ``signal.signal``)."""
    global _watching
    with _lock:
        for signum in signums:
            _actions[signum] = action
            signal.signal(signum, _wake_only)
        if not _watching:
            read, write = os.pipe()
            os.set_blocking(write, False)
            signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            threading.Thread(target=_watch, args=(read,), name="dz-signals", daemon=True).start()
            _watching = True


def _watch(read: int) -> None:
    while True:
        for signum in os.read(read, 64):
            # another handler set since (signal.signal elsewhere) has already run in the main thread
            action = _actions.get(signum) if signal.getsignal(signum) is _wake_only else None
            if action is None:
                continue
            try:
                action(signum)
            except Exception as exc:  # the watcher outlives one failed action
                print(f"[dora-zenoh] error handling signal {signum}: {exc}", file=sys.stderr, flush=True)
