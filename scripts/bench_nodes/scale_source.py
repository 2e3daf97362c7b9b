"""Scale probe, source: on every tick, send its sequence number (from 0) on `out`.

It sends while the file PAUSE_FILE does not exist (so the harness can measure the
dataflow idle), and returns once STOP_FILE exists: its readers then get end of
stream, and the whole chain or fan-out winds down by itself. It writes how many it
sent to STAMP_DIR/<node id>.json.

Environment: STAMP_DIR, NODE_ID, PAUSE_FILE, STOP_FILE.
"""
from __future__ import annotations

import json
import os

import pyarrow as pa
from dora import Node


def main() -> None:
    """Send on every tick until STOP_FILE appears."""
    node = Node()
    pause, stop = os.environ["PAUSE_FILE"], os.environ["STOP_FILE"]
    # Our pid, for hop_cpu.py: a node forked from the fork server shows the zygote's environment in /proc
    with open(os.path.join(os.environ["STAMP_DIR"], f"{os.environ['NODE_ID']}.pid"), "w") as f:
        f.write(str(os.getpid()))
    sent = 0
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        if os.path.exists(stop):
            break
        if not os.path.exists(pause):
            node.send_output("out", pa.array([sent], type=pa.int64()))
            sent += 1
    with open(os.path.join(os.environ["STAMP_DIR"], f"{os.environ['NODE_ID']}.json"), "w") as f:
        json.dump({"sent": sent}, f)


if __name__ == "__main__":
    main()
