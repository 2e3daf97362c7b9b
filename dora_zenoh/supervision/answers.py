"""Commands answered on threads of their own, and let go of before the process ends.

The coordinator and each daemon answer a query (a CLI command, a coordinator's ``spawn``) on a
thread, never on Zenoh's: a command may take seconds. A ``zenoh.Query`` must then be gone before
the interpreter finalizes: its deallocation is Rust that takes the GIL back, and a thread that
takes the GIL once finalization began is ended with ``pthread_exit``, whose unwinding pyo3's
``catch_unwind`` may not swallow, so glibc aborts the whole process ("FATAL: exception not
rethrown", docs/design/shutdown.md). Seen: the coordinator ended by SIGABRT after answering
``down``, the query's last reference held by its finished thread's arguments
(tests/integration/test_coordinator.py -k answered_before: 3 of 72 runs, three at a time; 0 of
120 since).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import zenoh

if TYPE_CHECKING:
    from collections.abc import Callable


class Answers:
    """Runs ``answer(query)`` on a thread per query; ``wait`` returns once none is in flight.

    The thread gets the query in a list that it empties, so nothing but ``answer``'s own frame
    holds it, and it is deallocated before the count goes down: a process that waited here
    holds no query when it exits.
    """

    def __init__(self, answer: Callable[[zenoh.Query], None], name: str) -> None:
        self._answer = answer
        self._name = name
        self._in_flight = 0
        self._changed = threading.Condition()

    def on_query(self, query: zenoh.Query) -> None:
        """A Zenoh callback: start answering ``query`` (counted from now)."""
        with self._changed:
            self._in_flight += 1
        threading.Thread(target=self._run, args=([query],), name=self._name, daemon=True).start()

    def _run(self, held: list[Any]) -> None:
        try:
            self._answer(held.pop())
        except zenoh.ZError:  # the asker left, or the session closes: nobody to answer
            pass
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait (up to ``timeout`` s) until no answer is in flight; whether none is."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout=timeout)
