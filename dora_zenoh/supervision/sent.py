"""How many messages each node's ended processes sent per output, and the tokens that say so.

A part of a multi-machine dataflow tells readers on other machines how many messages a node
that ended for good sent in all (``keys.sent_token``), so that a reader that missed its
end-of-stream notice (a link outage) counts what never came. The counts arrive two ways, on
two threads: the process's notice (a Zenoh callback) and, for a process that ended without
one reaching us, its sent file (``wire.tally``, read when the run loop records the exit).

Two holes closed here (5 Dec: a reader waited for a count that never came, once in CI):
the file's mark says the notice *went out*, not that it came (a link that closed under it,
a supervisor whose Zenoh stalled past its lease), so a marked file is counted too, until its
notice comes and takes its place; and a notice that came while the exit was being declared
was added after the tokens were made and never declared.
"""
from __future__ import annotations

import threading
from typing import Any

import zenoh

from dora_zenoh.wire import keys, tally


class SentCounts:
    """Per node, what its ended processes sent per output. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, dict[str, int]] = {}
        # node -> (file, counts, marked) read from files of processes whose notice had not come
        # (oldest first): that process's notice, if it comes after all, replaces them. Marked:
        # the notice went out; unmarked: the process may have been killed between its notice
        # and the mark, so a notice naming that file replaces its counts too.
        self._awaited: dict[str, list[tuple[str, dict[str, int], bool]]] = {}

    def of(self, node: str) -> dict[str, int]:
        """What ``node``'s ended processes sent, per output (a copy)."""
        with self._lock:
            return dict(self._totals.get(node, {}))

    def all(self) -> dict[str, dict[str, int]]:
        """Every node's counts (a copy)."""
        with self._lock:
            return {node: dict(counts) for node, counts in self._totals.items()}

    def notice(self, node: str, outputs: dict[str, int], proc: Any, path: str | None = None) -> None:
        """A process of ``node`` sent its end-of-stream notice with ``outputs`` (``path``: the sent
        file it names). If that process was counted from its file, the notice replaces those
        counts; else it is ``proc``'s (the node's current process, marked ``noticed``: its file
        will not be counted). A notice naming no file is the oldest marked awaited one's."""
        with self._lock:
            totals = self._totals.setdefault(node, {})
            awaited = self._awaited.get(node, [])
            mine = next((i for i, (file, _, marked) in enumerate(awaited)
                         if (file == path if path is not None else marked)), None)
            if mine is not None:
                for out, n in awaited.pop(mine)[1].items():
                    totals[out] = totals.get(out, 0) - n
            elif proc is not None and (path is None or path == proc.sent_file):
                proc.noticed = True
            for out, n in outputs.items():
                totals[out] = totals.get(out, 0) + n

    def cover(self, node: str, outputs: list[str]) -> None:
        """``node`` ended for good: an output none of its processes counted was never sent on (a
        process that failed before ``Node()`` opened no file). Its readers must hear 0, not
        wait for a count that never comes (the bench's ping, failing on a bad argument, left
        its reader's input saying so)."""
        with self._lock:
            totals = self._totals.setdefault(node, {})
            for out in outputs:
                totals.setdefault(out, 0)

    def ended_without_notice(self, node: str, path: str, proc: Any) -> None:
        """``proc`` ended and its notice has not come (yet): count what its file says. A file
        marked as noticed means the notice is on its way; an unmarked one, that it may be (the
        mark comes after the notice: a process killed in between). If it comes, it replaces
        these counts."""
        counts = tally.read(path)
        out_there = tally.noticed(path)
        with self._lock:
            if proc.noticed:  # it came meanwhile
                return
            totals = self._totals.setdefault(node, {})
            for out, n in counts.items():
                totals[out] = totals.get(out, 0) + n
            self._awaited.setdefault(node, []).append((path, counts, out_there))


class SentTokens:
    """The ``sent`` tokens of the nodes that ended for good, each declared again whenever its
    counts change (a notice that comes after the node's end). One declaration at a time: the
    notice's thread and the run loop both declare, and a stale one must never be the last."""

    def __init__(self, session: zenoh.Session, prefix: str, dataflow: str, counts: SentCounts) -> None:
        self._session, self._prefix, self._dataflow, self._counts = session, prefix, dataflow, counts
        self._one_at_a_time = threading.Lock()
        self._tokens: dict[str, tuple[dict[str, int], list[Any]]] = {}  # node -> (counts declared, tokens)

    def declare(self, node: str) -> None:
        """``node`` ended for good (or its counts changed since): say what it sent in all."""
        with self._one_at_a_time:
            counts = self._counts.of(node)
            if node in self._tokens and self._tokens[node][0] == counts:
                return
            tokens = []
            for output, count in sorted(counts.items()):
                try:
                    tokens.append(self._session.liveliness().declare_token(
                        keys.sent_token(self._prefix, self._dataflow, node, output, int(count))))
                except (zenoh.ZError, ValueError, TypeError):
                    continue
            old = self._tokens.get(node, ({}, []))[1]
            self._tokens[node] = (counts, tokens)
            for token in old:
                try:
                    token.undeclare()
                except zenoh.ZError:
                    pass
