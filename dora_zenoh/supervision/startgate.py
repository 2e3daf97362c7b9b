"""The start gate: a runner says once that every node it started is ready (or has ended).

dora-rs holds every node's first ``recv`` until all nodes of the dataflow have initialised.
Without that, a node only waited for its own readers, so a long chain's source sent while
the chain's far end was still starting: the first stages' traffic took the CPU the last
ones needed to start (a 200-node chain on 2 cores: 17-58 s to the sink's first message,
docs/scale-and-logs.md). Each node started with the dataflow waits in ``Node()`` for this
gate (``node.barrier``); the runner opens it by declaring one liveliness token, so the cost
is one token per runner and one fact query per node, not a token per pair of nodes.

A node that has not said it is ready after the barrier's timeout does not hold the others
any longer: the gate opens, naming it. A machine's part of a multi-machine dataflow waits for
the nodes of every machine (``DataflowRun._gated_nodes``): the dataflow starts as one.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from dora_zenoh.descriptor import ResolvedNode


def waits_for(node: ResolvedNode) -> bool:
    """Whether the gate waits for ``node``: an operator runtime, or a node that reads inputs or
    sends outputs of its own (so it calls ``Node()``). A program whose only output is its
    stdout, which the runner publishes (``send_stdout_as``), need not use the API at all."""
    if node.kind == "runtime":
        return True
    return bool(node.inputs) or any(o != node.send_stdout_as for o in node.outputs)


class StartGate:
    """Opens (``on_open``, once) when every node of ``nodes`` is ready or ended, or when
    ``timeout`` seconds have passed since :meth:`arm` (``on_late`` gets the ones missing).
    Thread-safe: readiness comes from Zenoh callbacks, ends from the run loop."""

    def __init__(self, nodes: Iterable[str], on_open: Callable[[], None],
                 on_late: Callable[[list[str], float], None]) -> None:
        self._missing = set(nodes)
        self._on_open, self._on_late = on_open, on_late
        self._lock = threading.Lock()
        self._armed = False
        self.opened = threading.Event()  # set once, as the gate opens (just before on_open)
        self._timer: threading.Timer | None = None

    @property
    def is_open(self) -> bool:
        return self.opened.is_set()

    def arm(self, timeout: float) -> None:
        """Every node is spawned: from now on the gate may open (not before: a node not yet
        spawned is not yet missed)."""
        with self._lock:
            self._armed = True
        self._timer = threading.Timer(timeout, self._late, (timeout,))
        self._timer.daemon = True
        self._timer.start()
        self._maybe_open()

    def done(self, node: str) -> None:
        """``node`` said it is ready (its token), or ended for good."""
        with self._lock:
            self._missing.discard(node)
        self._maybe_open()

    def close(self) -> None:
        """The run ends: the gate never opens after this."""
        with self._lock:
            self._armed = False
        if self._timer is not None:
            self._timer.cancel()

    def _maybe_open(self) -> None:
        with self._lock:
            if not self._armed or self.opened.is_set() or self._missing:
                return
            self.opened.set()
        self._open()

    def _late(self, timeout: float) -> None:
        with self._lock:
            if not self._armed or self.opened.is_set():
                return
            self.opened.set()
            missing = sorted(self._missing)
        self._on_late(missing, timeout)
        self._open()

    def _open(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._on_open()
