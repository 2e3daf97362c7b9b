"""Startup probe, relay: record time.time() of the first input, forward it, finish.

The harness compares the latest of these wall-clock stamps with the moment it
spawned the runner. Forwarding lets the same script form a chain.

Environment: STAMP_FILE (the stamp is written here).
"""
from __future__ import annotations

import os
import time

from dora import Node


def main() -> None:
    """Wait for the first input, stamp it, pass it on."""
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            stamp = time.time()
            with open(os.environ["STAMP_FILE"], "w") as f:
                f.write(repr(stamp))
            node.send_output("go", event["value"])
            break
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
