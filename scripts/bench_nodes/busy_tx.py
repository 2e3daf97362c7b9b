"""Send-then-compute probe: on every tick, send the time, then keep the CPU busy.

A sensor or planner node often sends its result and goes straight on to its next
piece of work without waiting. Whatever the runtime still has to do to get that
message out must then compete with the node's own thread for a CPU; this node
measures nothing itself, busy_rx.py does.

Environment: BUSY_MS (how long to compute after each send), COUNT, WARMUP (ticks
whose messages the receiver does not count), CPU_FILE (optional: this process's CPU
time from the WARMUP-th send to the last is written there, as pipeline_relay.py does).
"""
from __future__ import annotations

import json
import os
import time

from dora import Node


def main() -> None:
    """Send WARMUP + COUNT stamped messages, computing BUSY_MS after each, then `done`."""
    busy_ns = int(float(os.environ.get("BUSY_MS", "10")) * 1e6)
    count, warmup = int(os.environ.get("COUNT", "200")), int(os.environ.get("WARMUP", "10"))
    node = Node()
    sent = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
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
        if sent == warmup:
            cpu0, wall0 = time.process_time(), time.monotonic()
        if sent >= warmup + count:
            break
    node.send_output("done", b"")
    if os.environ.get("CPU_FILE"):
        with open(os.environ["CPU_FILE"], "w") as f:
            json.dump({"cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0,
                       "messages": max(0, sent - warmup)}, f)


if __name__ == "__main__":
    main()
