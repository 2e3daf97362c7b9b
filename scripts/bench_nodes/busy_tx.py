"""Send-then-compute probe: on every tick, send the time, then keep the CPU busy.

A sensor or planner node often sends its result and goes straight on to its next
piece of work without waiting. Whatever the runtime still has to do to get that
message out must then compete with the node's own thread for a CPU; this node
measures nothing itself, busy_rx.py does.

Environment: BUSY_MS (how long to compute after each send), COUNT, WARMUP (ticks
whose messages the receiver does not count).
"""
from __future__ import annotations

import os
import time

from dora import Node


def main() -> None:
    """Send WARMUP + COUNT stamped messages, computing BUSY_MS after each, then `done`."""
    busy_ns = int(float(os.environ.get("BUSY_MS", "10")) * 1e6)
    total = int(os.environ.get("COUNT", "200")) + int(os.environ.get("WARMUP", "10"))
    node = Node()
    sent = 0
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        now = time.perf_counter_ns()
        node.send_output("stamp", now.to_bytes(8, "little"))
        end = now + busy_ns
        while time.perf_counter_ns() < end:  # the computation: holds the CPU (and the GIL)
            pass
        sent += 1
        if sent >= total:
            break
    node.send_output("done", b"")


if __name__ == "__main__":
    main()
