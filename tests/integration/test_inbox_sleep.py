"""How a node's thread sleeps (dora_zenoh.node.inbox) as other processes see it: with a ring
of its own (no ``drop_oldest`` input), what it declares to be woken stays in its session.

Two real Zenoh sessions in this process: the node's, and an observer linked to it over
loopback TCP whose publisher on the node's ring key would match any subscriber declared
there for other processes. Before, every wait in a lone block input's FIFO declared one
(and every doze another), and it went out to every peer and router: twice per message.
"""
from __future__ import annotations

import queue
import threading
import time

import pytest
import zenoh

from dora_zenoh.node.fifo import FifoInput
from dora_zenoh.node.inbox import DOZE_AFTER, Inbox
from dora_zenoh.node.inputs import InputQueue, seq_of
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import zconfig

pytestmark = pytest.mark.timeout(60)
RING = "dora/sleeptest/@dz/wake/sink/1"
KEY = "dora/sleeptest/src/out"


def _until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_node_asleep_in_its_block_input_declares_nothing_to_other_processes() -> None:
    endpoint = zconfig.free_tcp_endpoint()
    observer = zenoh.open(zconfig.peer_config([], [endpoint]))
    node = zenoh.open(zconfig.peer_config([endpoint], []))
    inbox = Inbox(node, RING, 16, None)  # no primary input: the node's own ring
    q = InputQueue("data", 4, True, inbox, "src", "out")
    fifo = FifoInput(node, KEY, q)
    inbox.add_fifo(fifo)
    ring_pub = observer.declare_publisher(RING)
    data_pub = observer.declare_publisher(KEY, congestion_control=zenoh.CongestionControl.BLOCK)
    seen: list[bool] = []  # what the observer learnt of subscribers on the ring key
    listener = ring_pub.declare_matching_listener(lambda status: seen.append(status.matching))
    taken: list[int] = []

    def node_thread() -> None:  # what Node.__next__ does with the inbox's tokens
        while len(taken) < 6:
            try:
                token = inbox.get()
            except queue.Empty:  # the session closed
                return
            if token is q:
                taken.append(seq_of(q.take()))

    thread = threading.Thread(target=node_thread, daemon=True)
    try:
        _until(lambda: data_pub.matching_status.matching, 30, "the node's FIFO subscriber")
        thread.start()
        for seq in range(6):
            # asleep in the FIFO (its watcher on the ring declared), or, for the last message,
            # dozing on the ring after DOZE_AFTER: long enough for a declaration to arrive
            time.sleep(DOZE_AFTER + 0.5 if seq == 5 else 0.3)
            data_pub.put(b"x", attachment=wire.attachment(seq, time.time_ns(), None))
            _until(lambda: len(taken) == seq + 1, 30, f"message {seq}")  # noqa: B023 (called here)
        assert taken == list(range(6))
        assert inbox.dozes >= 1  # the last wait dozed: that path was looked at too
        assert seen == [] and not ring_pub.matching_status.matching
    finally:
        listener.undeclare()
        inbox.close()
        thread.join(5)
        node.close()
        observer.close()
