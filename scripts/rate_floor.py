#!/usr/bin/env python3
"""The CPU floor of a message at a low rate: plain zenoh-python, no dora-zenoh.

A publisher sends 8 B every PERIOD ms to a relay (``recv()`` then ``put()`` of the same
payload and attachment) and on to a subscriber (``recv()``, ``to_bytes()``), three processes
on loopback with the one-thread Zenoh runtime dora-zenoh gives its nodes. Prints the CPU time
per message of the relay and of the subscriber (their own processes, all threads): what one
hop of a dora-zenoh chain costs before any of dora-zenoh's own work (see
docs/scale-and-logs.md, "Where a node's CPU goes").

    python scripts/rate_floor.py --count 500 --period-ms 20
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

ONE_THREAD = "(rx:(worker_threads:1),tx:(handover:rx),net:(handover:rx),acc:(handover:rx))"
WARMUP = 20  # messages not measured at the start


def _session(listen: str | None, connect: str | None):  # noqa: ANN202 - zenoh imported in the child only
    import zenoh

    conf = zenoh.Config()
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/delay", "0")
    if listen:
        conf.insert_json5("listen/endpoints", json.dumps([listen]))
    if connect:
        conf.insert_json5("connect/endpoints", json.dumps([connect]))
    return zenoh.open(conf)


def _child(role: str, port_a: int, port_b: int, count: int, period: float) -> None:
    import zenoh

    a, b = f"tcp/127.0.0.1:{port_a}", f"tcp/127.0.0.1:{port_b}"
    if role == "pub":
        session = _session(a, None)
        pub = session.declare_publisher("floor/a")
        time.sleep(1.5)  # the others link
        due = time.monotonic()
        for seq in range(count):
            due += period
            time.sleep(max(0.0, due - time.monotonic()))
            pub.put(b"12345678", attachment=json.dumps({"seq": seq, "ts": time.time_ns()}).encode())
        time.sleep(1.0)
        session.close()
        return
    session = _session(b if role == "relay" else None, a if role == "relay" else b)
    sub = session.declare_subscriber("floor/a" if role == "relay" else "floor/b", zenoh.handlers.RingChannel(1000))
    pub = session.declare_publisher("floor/b") if role == "relay" else None
    got, start = 0, None
    while got < count - WARMUP // 2:
        sample = sub.recv()
        got += 1
        if got == WARMUP:
            start = time.process_time()
        if pub is not None:
            pub.put(sample.payload, attachment=sample.attachment)
        else:
            sample.payload.to_bytes()
    cpu = time.process_time() - start
    print(json.dumps({"role": role, "cpu_us_per_msg": round(cpu / (got - WARMUP) * 1e6, 1), "messages": got}))
    session.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=500, help="messages to send")
    ap.add_argument("--period-ms", type=float, default=20.0, help="time between two messages")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.role:
        port_a, port_b = (int(p) for p in opts.ports.split(","))
        _child(opts.role, port_a, port_b, opts.count, opts.period_ms / 1000)
        return
    ports = f"{_free_port()},{_free_port()}"
    env = {**os.environ, "ZENOH_RUNTIME": ONE_THREAD}
    base = [sys.executable, __file__, "--count", str(opts.count), "--period-ms", str(opts.period_ms), "--ports", ports]
    procs = [subprocess.Popen([*base, "--role", role], env=env, stdout=subprocess.PIPE, text=True)
             for role in ("pub", "relay", "sub")]
    timeout = 30 + opts.count * opts.period_ms / 1000
    for proc in procs:
        out, _ = proc.communicate(timeout=timeout)
        if out.strip():
            print(out.strip())
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
