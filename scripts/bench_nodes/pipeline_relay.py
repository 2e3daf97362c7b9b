"""Pipeline stage: forward every `stamp` input unchanged on `stamp`, and `done` on `done`.

A filter or driver stage of a sensor pipeline: it gets a message, sends it on, and waits
for the next one. It writes its own CPU time (all its threads) from its WARMUP-th message
to `done` into CPU_FILE, so the harness can tell what a stage costs under each runtime.

Environment: WARMUP, CPU_FILE.
"""
from __future__ import annotations

import json
import os
import time

from dora import Node


def main() -> None:
    """Forward until `done` (or STOP), then write the CPU report."""
    warmup = int(os.environ.get("WARMUP", "10"))
    node = Node()
    seen = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        if event["id"] == "done":
            node.send_output("done", b"")
            break
        node.send_output("stamp", event["value"])
        seen += 1
        if seen == warmup:
            cpu0, wall0 = time.process_time(), time.monotonic()
    with open(os.environ["CPU_FILE"], "w") as f:
        json.dump({"cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0,
                   "messages": max(0, seen - warmup)}, f)


if __name__ == "__main__":
    main()
