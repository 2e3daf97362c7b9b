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

import json
import threading
from typing import TYPE_CHECKING, Any

import zenoh

from dora_zenoh.errors import DoraZenohError

if TYPE_CHECKING:
    from collections.abc import Callable


class Answers:
    """Answers each command query on a thread of its own; ``wait`` returns once none is in flight.

    ``command(verb, args, query)`` does the work and returns the reply's fields (``ok`` is added);
    a DoraZenohError becomes ``{"ok": False, "error": message}``, and anything else too, named
    by its type: a coordinator or daemon outlives bad requests. The reply goes to
    ``reply_key(verb)``, JSON, and is the final one. The thread gets the query in a list that it
    empties, so nothing but ``_answer``'s frame holds it, and it is deallocated before the count
    goes down: a process that waited here holds no query when it exits.
    """

    def __init__(self, command: Callable[[str, Any, zenoh.Query], dict[str, Any]],
                 reply_key: Callable[[str], str], name: str) -> None:
        self._command = command
        self._reply_key = reply_key
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

    def _answer(self, query: zenoh.Query) -> None:
        verb = str(query.key_expr).rsplit("/", 1)[1]
        try:
            args = json.loads(query.payload.to_bytes()) if query.payload is not None else {}
            reply: dict[str, Any] = {"ok": True, **self._command(verb, args, query)}
        except DoraZenohError as exc:  # messages written for the user
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:  # report, don't die
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        try:
            query.reply(self._reply_key(verb), json.dumps(reply))
        finally:
            query.drop()  # the final reply: the asker stops waiting now

    def wait(self, timeout: float) -> bool:
        """Wait (up to ``timeout`` s) until no answer is in flight; whether none is."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout=timeout)
