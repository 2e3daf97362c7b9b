"""Latency probe: send a payload, wait for its echo, record the round trips.

Uses only the dora node API (events as dicts) so the same file runs under
dora-zenoh and dora-rs. One-way latency is half the round trip, which needs
no clock shared between processes. ``cpu_us``: CPU time of this process (all
its threads) per round trip, what waiting for the echo costs included.

Environment: RESULT_FILE (JSON written here), SIZES (comma list of bytes),
ROUNDS, WARMUP, ECHO_TIMEOUT (seconds to wait for one echo).
"""
from __future__ import annotations

import json
import os
import time

from dora import Node


def percentile(sorted_ns: list[int], q: float) -> float:
    """One-way microseconds at quantile q of sorted round trips (nearest rank, no numpy needed)."""
    index = min(len(sorted_ns) - 1, int(len(sorted_ns) * q))
    return sorted_ns[index] / 2000


def measure(node: Node, size: int, rounds: int, warmup: int, timeout: float) -> dict:
    """Ping-pong `rounds` times with `size` bytes; the echo's length is checked, not its bytes."""
    payload = bytes(size)
    rtts: list[int] = []
    cpu0 = 0
    for i in range(warmup + rounds):
        if i == warmup:
            cpu0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        node.send_output("ping", payload)
        event = node.next(timeout=timeout)
        t1 = time.perf_counter_ns()
        if event is None or event["type"] != "INPUT":
            raise SystemExit(f"no echo for size {size} round {i}: {event!r}")
        if len(event["value"]) != size:
            raise SystemExit(f"echo of size {size} came back with {len(event['value'])} bytes")
        if i >= warmup:
            rtts.append(t1 - t0)
    cpu_ns = time.process_time_ns() - cpu0
    rtts.sort()
    return {"one_way_p50_us": percentile(rtts, 0.5), "one_way_p90_us": percentile(rtts, 0.9),
            "rounds": len(rtts), "cpu_us": cpu_ns / len(rtts) / 1000}


def main() -> None:
    """Measure every size in turn, write the report, then tell pong to finish."""
    sizes = [int(s) for s in os.environ.get("SIZES", "8").split(",")]
    rounds = int(os.environ.get("ROUNDS", "300"))
    warmup = int(os.environ.get("WARMUP", "30"))
    timeout = float(os.environ.get("ECHO_TIMEOUT", "20"))
    node = Node()
    report = {str(size): measure(node, size, rounds, warmup, timeout) for size in sizes}
    with open(os.environ["RESULT_FILE"], "w") as f:
        json.dump(report, f)
    node.send_output("done", b"")


if __name__ == "__main__":
    main()
