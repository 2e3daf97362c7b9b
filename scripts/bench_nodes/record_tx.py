"""Record case sender: SIZE-byte messages at RATE per second for SECONDS, paced in small batches.

It is the only node of its dataflow: its one reader is the recorder (``run --record``), so
the figures are the recorder's. Writes how many it sent and how long that took.

Environment: RESULT_FILE, SIZE, RATE, SECONDS.
"""
from __future__ import annotations

import json
import os
import time

from dora import Node


def main() -> None:
    size, rate = int(os.environ["SIZE"]), float(os.environ["RATE"])
    seconds = float(os.environ["SECONDS"])
    node = Node()
    payload = os.urandom(size)  # incompressible: zstd works as hard as on real sensor data
    total = int(rate * seconds)
    batch = max(1, int(rate / 1000))  # ~1 ms of messages between pacing checks
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        for _ in range(min(batch, total - sent)):
            node.send_output("data", payload)
        sent += min(batch, total - sent)
        ahead = t0 + sent / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    elapsed = time.perf_counter() - t0
    with open(os.environ["RESULT_FILE"], "w") as f:
        json.dump({"sent": sent, "seconds": elapsed}, f)


if __name__ == "__main__":
    main()
