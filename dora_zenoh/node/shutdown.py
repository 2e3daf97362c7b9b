"""Leaving a process that has a Zenoh session without an abort at interpreter exit.

CPython 3.11 ends any thread that takes the GIL once interpreter finalization has
begun, with ``pthread_exit``. When that thread is inside Rust code (zenoh-python: a
Zenoh thread running a Python callback, or one of our threads coming back from a
Zenoh call such as ``get``, ``put``, ``delete`` or a channel's ``recv``, which
re-takes the GIL every 100 ms to look for signals), the forced unwind meets Rust's
``catch_unwind`` and the process dies with SIGABRT ("FATAL: exception not
rethrown"), however cleanly the script ended.

So a node must be sure, before its script's last atexit handler returns, that no
thread can come back into Python from Zenoh:

* ``Helpers`` starts the node's own short-lived threads (the ones that ask Zenoh
  something from a callback); they read replies with :func:`replies`, never blocked in
  Rust, stop asking once the node leaves, and are joined before the session closes;
* the node undeclares every entity that calls Python back before it closes the
  session, so that a close that fails (Zenoh's "close operation timed out" under
  heavy load) leaves nothing behind that calls Python;
* whatever still could come back (a thread still inside Zenoh after the wait, an
  entity that could not be undeclared) is reported with ``CLOSE_FAILED_TAG``, and
  :func:`exit_unless_safe`, the last atexit handler, ends the process with
  ``os._exit`` after flushing stdio and every open file, instead of letting the
  interpreter finalize into an abort. See docs/design/shutdown.md.
"""
from __future__ import annotations

import atexit
import gc
import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# How long a closing node waits for its helper threads (they stop within a poll once it
# leaves: more is a wedged thread).
JOIN_TIMEOUT = 5.0
POLL_S = 0.005  # how often a helper looks for a query's replies (see replies)
# How long a closing node waits for Zenoh's session close. It takes milliseconds, but Zenoh
# gives every TCP link a 10 s SO_LINGER (not configurable in zenoh 1.10), so dropping a link
# to an unreachable peer (a partition) with bytes unsent blocks close(2) for 10 s: the nodes of
# the machine still reachable were killed at the grace period's end. The kernel does not linger
# for a process that exits: it finishes such a link in the background.
CLOSE_WAIT = 1.0

# What could still call Python from Zenoh, each with a test "is it still so?" (see exit_unless_safe).
_hazards: list[tuple[str, Callable[[], bool]]] = []
_lock = threading.Lock()


class Helpers:
    """The node's own threads that call Zenoh; joined (bounded) when the node closes."""

    def __init__(self) -> None:
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._joining = False

    def start(self, target: Callable[..., Any], *args: Any, name: str) -> None:
        """Run ``target(*args)`` on a daemon thread that ``join`` will wait for (not once
        the node is closing: what it would ask Zenoh no longer matters)."""
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:  # started under the lock: join() never sees a thread not started yet
            if self._joining:
                return
            self._threads = {t for t in self._threads if t.is_alive()}  # they are short-lived
            self._threads.add(thread)
            thread.start()

    def join(self, timeout: float = JOIN_TIMEOUT) -> list[str]:
        """Wait until every helper has ended; the names of those still running after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._joining = True
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sorted(t.name for t in threads if t.is_alive())

    def running(self) -> bool:
        """Whether any helper is still running."""
        with self._lock:
            return any(t.is_alive() for t in self._threads)


def replies(handler: Any, timeout: float, stop: Callable[[], bool]) -> Iterator[Any]:
    """The replies of a ``get`` made on a helper thread, polled: never blocked in Zenoh.

    Iterating a reply handler blocks in Rust and re-takes the GIL every 100 ms to look for
    signals; a ``get`` made while the session closes may never end. Polling with
    ``try_recv`` (which keeps the GIL) and sleeping in Python instead ends within
    ``POLL_S`` of ``stop()`` turning true, with no Zenoh call in progress.
    """
    deadline = time.monotonic() + timeout + 1.0  # the get's own timeout ends it first
    while True:
        try:
            reply = handler.try_recv()
        except Exception:  # zenoh.ZError: every reply is in (or the session closed)
            return
        if reply is not None:
            yield reply
            continue
        if stop() or time.monotonic() >= deadline:
            return
        time.sleep(POLL_S)


def close_session(session: Any, wait: float, node: bool = True) -> bool:
    """Close ``session``, waiting at most ``wait`` seconds; False if it is still closing then
    (in a node, recorded as a hazard: the process then ends with os._exit, see
    :func:`exit_unless_safe`; a supervisor lives on, and sets its own exit code).
    Raises what ``close`` raised (zenoh.ZError) when it ended in time."""
    failed: list[BaseException] = []

    def close() -> None:
        try:
            session.close()
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=close, name="dora-zenoh-close", daemon=True)
    thread.start()
    thread.join(wait)
    if thread.is_alive():
        if node:
            hazard("session still closing", still=thread.is_alive)
        return False
    if failed:
        raise failed[0]
    return True


def undeclare_all(entities: list[Any]) -> list[str]:
    """Undeclare Zenoh entities that call Python back (newest first); what failed, as text."""
    failed = []
    for entity in reversed(entities):
        try:
            entity.undeclare()
        except Exception as exc:  # zenoh.ZError, or already undeclared
            if "undeclared" not in str(exc).lower():
                failed.append(f"{entity.__class__.__name__}: {exc}")
    entities.clear()
    return failed


def hazard(what: str, still: Callable[[], bool] = lambda: True) -> None:
    """Something may still call Python from Zenoh at interpreter exit (as long as ``still()``
    says so): then the process ends with os._exit instead of finalizing."""
    with _lock:
        _hazards.append((what, still))


def exit_unless_safe() -> None:
    """The last atexit handler: if a hazard was recorded, end the process here.

    Every other atexit handler registered after dora-zenoh's import has run by now. The
    exit status is 1 when the script ended with an uncaught exception, else 0: CPython
    does not show a handler the code given to ``sys.exit`` (the runner reports such a
    node as failed anyway, because it printed ``CLOSE_FAILED_TAG``).
    """
    with _lock:
        hazards = list(_hazards)
    if not any(still() for _, still in hazards):
        return
    code = 1 if getattr(sys, "last_value", None) is not None else 0
    _flush_everything()
    os._exit(code)


def _flush_everything() -> None:
    """What finalization would have written: logging's handlers, stdio, open files."""
    logging = sys.modules.get("logging")
    if logging is not None:
        try:
            logging.shutdown()
        except Exception:
            pass
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase):
            try:
                if not obj.closed and obj.writable():
                    obj.flush()
            except Exception:
                pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# Registered at import, before the script registers its own handlers: it runs after them.
atexit.register(exit_unless_safe)
