#!/usr/bin/env python3
"""The machine's floor under any two-process latency: a 1-byte ping-pong over OS pipes.

No Zenoh, no Python work per message beyond one os.write and one os.read: what is
left is the kernel waking the other process. Where the two processes run on
different CPUs, that includes waking an idle CPU, which on a virtual machine can
cost tens of microseconds (the hypervisor has to run the halted virtual CPU again).
Every ping-pong of bench.py's latency case pays at least one such wake-up per
one-way trip, so this figure says how much of its latency is the machine's.

Two placements are measured: ``free`` (the scheduler places both processes, as it
does the nodes of a benchmark run) and ``one-cpu`` (both pinned to the first CPU
this process may use, so every wake-up is a context switch on that CPU).

    python scripts/pipe_floor.py --rounds 5000        # prints JSON
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def echo() -> None:
    """The pong side: echo every byte from stdin to stdout until EOF."""
    read, write = os.read, os.write
    while True:
        byte = read(0, 1)
        if not byte:
            return
        write(1, byte)


def one_way(rounds: int, warmup: int) -> dict:
    """Ping-pong `rounds` times with a fresh echo process; one-way p50/p90 in µs (half the round trip)."""
    child = subprocess.Popen([sys.executable, __file__, "--echo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out, inp = child.stdin.fileno(), child.stdout.fileno()  # type: ignore[union-attr]
        write, read, clock = os.write, os.read, time.perf_counter_ns
        rtts = []
        for i in range(warmup + rounds):
            t0 = clock()
            write(out, b"x")
            if read(inp, 1) != b"x":
                raise SystemExit("the echo process died")
            if i >= warmup:
                rtts.append(clock() - t0)
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]
    rtts.sort()
    return {"one_way_p50_us": rtts[len(rtts) // 2] / 2000,
            "one_way_p90_us": rtts[min(len(rtts) - 1, int(len(rtts) * 0.9))] / 2000}


def measure(rounds: int, warmup: int) -> dict:
    """Both placements; the pinned one is measured second and the affinity restored after."""
    report = {"free": one_way(rounds, warmup)}
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})  # inherited by the echo process
    try:
        report["one-cpu"] = one_way(rounds, warmup)
    finally:
        os.sched_setaffinity(0, allowed)
    return report


def main() -> None:
    """Print the JSON of `measure` (or be the echo process)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5000, help="measured round trips per placement")
    ap.add_argument("--warmup", type=int, default=200, help="unmeasured round trips first")
    ap.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo:
        echo()
    else:
        print(json.dumps(measure(args.rounds, args.warmup)))


if __name__ == "__main__":
    main()
