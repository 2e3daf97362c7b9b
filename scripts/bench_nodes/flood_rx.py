"""Throughput receiver: count `data` inputs, acknowledge every WINDOW of them.

On `done` it writes how many data messages it received and whether any had a
wrong length, so the harness can report lost messages as a number.

Environment: RX_RESULT_FILE, WINDOW, SIZE.
"""
from __future__ import annotations

import json
import os

from dora import Node


def main() -> None:
    """Count and acknowledge until the sender says done (or the dataflow stops)."""
    window = int(os.environ.get("WINDOW", "100"))
    size = int(os.environ.get("SIZE", "8"))
    node = Node()
    received = 0
    wrong_size = 0
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        if event["id"] == "done":
            break
        received += 1
        if len(event["value"]) != size:
            wrong_size += 1
        if received % window == 0:
            node.send_output("ack", b"\x01")
    with open(os.environ["RX_RESULT_FILE"], "w") as f:
        json.dump({"received": received, "wrong_size": wrong_size}, f)


if __name__ == "__main__":
    main()
