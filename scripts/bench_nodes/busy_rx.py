"""Send-then-compute probe, receiving side: how long each stamp took to arrive.

Both processes read the same clock (CLOCK_MONOTONIC, through `perf_counter_ns`), so
the delay is one-way and needs no echo. The first WARMUP messages are not counted.

Environment: RESULT_FILE (JSON written here), WARMUP.
"""
from __future__ import annotations

import json
import os
import time

from dora import Node


def stamp_of(value: object) -> int:
    """The sender's clock reading: bytes here, or a pyarrow uint8 array (dora-rs)."""
    raw = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else bytes(value.to_pylist())
    return int.from_bytes(raw[:8], "little")


def quantile(sorted_us: list[float], q: float) -> float:
    """Nearest-rank quantile (no numpy needed)."""
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * q))]


def main() -> None:
    """Collect delays until the sender says done, then write p50/p90/p99/max in µs, and this
    process's CPU time over the counted messages."""
    warmup = int(os.environ.get("WARMUP", "10"))
    node = Node()
    delays: list[float] = []
    seen = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        if event["id"] == "done":
            break
        arrived = time.perf_counter_ns()
        delay = (arrived - stamp_of(event["value"])) / 1000  # every time: the first one imports pyarrow
        seen += 1
        if seen > warmup:
            delays.append(delay)
        elif seen == warmup:
            cpu0, wall0 = time.process_time(), time.monotonic()
    delays.sort()
    report = {"messages": len(delays), "cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0}
    if delays:
        report |= {"p50_us": quantile(delays, 0.5), "p90_us": quantile(delays, 0.9),
                   "p99_us": quantile(delays, 0.99), "max_us": delays[-1]}
    with open(os.environ["RESULT_FILE"], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
