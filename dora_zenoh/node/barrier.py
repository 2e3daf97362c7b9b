"""The start barrier: ``Node()`` returns once every node that reads its outputs is ready,
and (a node the runner started with the dataflow) once the runner says that every node it
started is (its start gate, :mod:`dora_zenoh.supervision.startgate`, as dora-rs does).

So a message sent right after ``Node()`` is never lost (Zenoh delivers nothing to a
subscriber that has not joined yet), and no node's traffic competes with the start of the
others. How long it waits: ``wire.contract.barrier_timeout_for`` (the runner opens its gate
by then, naming the nodes it gave up on; GATE_MARGIN covers a runner that cannot).

Our own sources may send as soon as we said we are ready (before this wait), so while it
waits, the thread keeps taking what its ``queue_policy: block`` inputs' FIFOs hold
(``Inbox.drain_fifos``): a full FIFO can stop the whole session from reading its links,
the one that brings a reader's token too, and the wait then never ended (docs/design/inbox.md).
A block input fed by a callback (which waits for room on Zenoh's thread just the same) takes
messages beyond its queue_size meanwhile (``InputQueue.early_room``).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dora_zenoh.console import warn

if TYPE_CHECKING:
    from dora_zenoh.node.inbox import Inbox
    from dora_zenoh.node.inputs import InputQueue
    from dora_zenoh.node.lockbox import LockInbox
    from dora_zenoh.wire.contract import NodeConfig

DRAIN_EVERY = 0.005  # s between two looks at the FIFOs while waiting
GATE_MARGIN = 5.0  # s a node waits for its runner's gate beyond the barrier's timeout


class StartBarrier:
    """Mixed into :class:`dora_zenoh.node.node.Node`, which sets up these attributes."""

    _cfg: NodeConfig
    _wake: Inbox | LockInbox
    _inputs: dict[str, InputQueue]
    node_id: str
    _outputs: dict[str, list]
    _state: threading.Condition
    _alive: set[str]
    _exited: set[str]
    _stopped: bool
    _gate_open: bool

    def _barrier(self, readers: dict[str, list[str]], timeout: float) -> None:
        """Return once every reader of our outputs is ready (or has already exited)."""
        waits_for = sorted({r for rs in readers.values() for r in rs})
        start = time.monotonic()
        try:
            if not self._wait_until(lambda: self._gate_open, start + timeout + GATE_MARGIN) and not self._stopped:
                self._gate_open = True  # (ends a confirmation still asking: peers._confirm)
                warn(f"node '{self.node_id}': its runner did not say within {timeout + GATE_MARGIN:.0f} s that "
                     "the dataflow's nodes are ready; going on")
            if waits_for:
                self._wait_for_readers(readers, waits_for, start + timeout, timeout)
        finally:  # block inputs hold their senders back from now on
            for q in self._inputs.values():
                with q.lock:
                    q.early_room = 0

    def _wait_until(self, done: Callable[[], bool], deadline: float) -> bool:
        """Wait (under ``_state``, notified by Zenoh's callbacks) until ``done()`` or STOP; False
        if ``deadline`` (monotonic) came first. Keeps taking what block inputs hold meanwhile."""
        drain = self._wake.drain_fifos if self._wake.has_fifos else None
        while True:
            with self._state:
                if done() or self._stopped:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._state.wait(left if drain is None else min(left, DRAIN_EVERY))
            if drain is not None:  # not under the lock: Zenoh's threads take it (_on_live)
                drain()

    def _wait_for_readers(self, readers: dict[str, list[str]], waits_for: list[str], deadline: float,
                          timeout: float) -> None:
        def missing() -> list[str]:
            return [n for n in waits_for if n not in self._alive and n not in self._exited]

        drain = self._wake.drain_fifos if self._wake.has_fifos else None
        if not self._wait_until(lambda: not missing(), deadline) and not self._stopped:
            warn(f"node '{self.node_id}': gave up waiting after {timeout:.0f} s for {', '.join(missing())} "
                  "to subscribe; messages sent before they start are lost")
            return
        # A reader's token can reach us (as history, through the hub) before its
        # subscription does; a message sent then is lost. So also wait until each output
        # that a live reader reads has a matching subscriber here.
        blockers = self._cfg.block_readers or {}
        for out_id, out_readers in readers.items():
            out = self._outputs.get(out_id)  # None for the stdout output: the runner publishes it
            live = [r for r in out_readers if r in self._alive and r not in self._exited]
            if out is None or not live:
                continue
            # A block reader of a split output subscribes to its block key (see Node's _outputs).
            pubs = {out[4] if out[4] is not None and r in blockers.get(out_id, ()) else out[3] for r in live}
            while (not all(p.matching_status.matching for p in pubs) and time.monotonic() < deadline
                   and not self._stopped):
                time.sleep(0.002)
                if drain is not None:
                    drain()
