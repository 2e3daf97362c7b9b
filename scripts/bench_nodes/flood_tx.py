"""Throughput sender: COUNT messages of SIZE bytes in windows of WINDOW.

After each window it waits for the receiver's acknowledgement, so a runtime
cannot win by dropping messages: a lost message means a missing ack, which
ends the run and is reported (never hidden). Rates cover the acknowledged
windows only, timed up to the last ack.

Environment: RESULT_FILE, SIZE, COUNT, WINDOW, ACK_TIMEOUT (seconds).
"""
from __future__ import annotations

import json
import os
import time

from dora import Node


def main() -> None:
    """Send windows until COUNT or a missing ack; write what was acknowledged and how fast."""
    size = int(os.environ.get("SIZE", "8"))
    count = int(os.environ.get("COUNT", "20000"))
    window = int(os.environ.get("WINDOW", "100"))
    ack_timeout = float(os.environ.get("ACK_TIMEOUT", "5"))
    node = Node()
    payload = bytes(size)
    sent = 0
    acknowledged = 0
    missing_ack_after = None
    t0 = time.perf_counter()
    last_ack = t0
    while sent < count:
        for _ in range(window):
            node.send_output("data", payload)
        sent += window
        event = node.next(timeout=ack_timeout)
        if event is None or event["type"] != "INPUT":
            missing_ack_after = sent
            break
        acknowledged = sent
        last_ack = time.perf_counter()
    elapsed = last_ack - t0  # up to the last ack: the wait that detected a loss is not sending time
    with open(os.environ["RESULT_FILE"], "w") as f:
        json.dump({"size": size, "window": window, "sent": sent, "acknowledged": acknowledged,
                   "missing_ack_after": missing_ack_after, "elapsed_s": elapsed,
                   "msgs_per_s": acknowledged / elapsed if acknowledged else None,
                   "MB_per_s": acknowledged * size / elapsed / 1e6 if acknowledged else None}, f)
    node.send_output("done", b"")


if __name__ == "__main__":
    main()
