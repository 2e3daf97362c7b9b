#!/usr/bin/env python3
"""The node thread's cost per received message, with the network out of the way.

A sender fills a ``queue_policy: block`` input's FIFO with COUNT 8-byte messages before the
reader starts reading, so the reader never waits and no Zenoh thread runs beside it: what is
timed is the Python a node runs per message, warm. Side by side, zenoh-python alone does what
the floor of dora's event API does per message (``zenoh_floor.Events``: the sequence number
checked, a dict event whose value is a pyarrow array), over the same kind of FIFO.

Stages of dora-zenoh's path (``--stages``), each timed from its own run:

- ``inbox``: ``Inbox.get()``, the message taken and counted;
- ``next``: ``Node._next()``, that and the event built (the attachment checked);
- ``value``: that and ``event["value"]`` read;
- ``loop``: ``for event in node:`` with flood_rx.py's checks (type, id, the value's length).

    python scripts/rx_path.py                       # every stage, and the floor, three runs each
    python scripts/rx_path.py --stages loop --runs 5 --cpu 1 --json rx_path.json

Each run is a process of its own, pinned to ``--cpu``; the table gives the median and range
of ns per message (thread CPU time). The receive path's history: docs/design/inbox.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
STAGES = ("inbox", "next", "value", "loop")


def send(count: int, endpoint: str, done: str) -> None:
    """The sender: COUNT messages on ``data`` (its ``end`` never sent: the reader's other input
    stays quiet, as flood_rx.py's ``done`` is during a flood), then wait to be killed."""
    from dora_zenoh import Node
    node = Node("tx", dataflow="rxpath", endpoint=endpoint, outputs=["data", "end"], barrier_timeout=10)
    payload = bytes(8)
    for _ in range(count):
        node.send_output("data", payload)
    Path(done).write_text("sent")
    time.sleep(600)


def read(stage: str, count: int, port: int) -> dict:
    """One reader run of ``stage``: ns of thread CPU per message."""
    from dora_zenoh import Node
    endpoint = f"tcp/127.0.0.1:{port}"
    node = Node("rx", dataflow="rxpath", endpoint=endpoint,
                inputs={"data": {"source": "tx/data", "queue_size": count, "queue_policy": "block"},
                        "end": "tx/end"})
    with tempfile.TemporaryDirectory() as tmp:
        done = Path(tmp) / "sent"
        tx = subprocess.Popen([sys.executable, __file__, "--role", "send", "--count", str(count),
                               "--endpoint", endpoint, "--done", str(done)])
        try:
            _wait_for(done, tx)
            time.sleep(0.3)  # the last messages into the FIFO
            got = 0
            start = time.thread_time_ns()
            if stage == "inbox":
                get = node._wake.get
                while got < count:
                    get(None)
                    got += 1
            elif stage in ("next", "value"):
                next_event = node._next
                while got < count:
                    event = next_event(None)
                    got += 1
                    if stage == "value":
                        len(event["value"])  # type: ignore[index]
            else:
                for event in node:  # flood_rx.py's loop
                    if event["type"] != "INPUT" or event["id"] == "end":
                        break
                    got += 1
                    if len(event["value"]) != 8:
                        raise SystemExit("a value of the wrong length")
                    if got == count:
                        break
            spent = time.thread_time_ns() - start
        finally:
            tx.kill()
            tx.wait()
    node.close()
    return {"stage": stage, "ns_per_msg": round(spent / got), "messages": got}


def floor(count: int, port: int) -> dict:
    """zenoh-python alone: the same FIFO filled, each message made the event dora's API hands a node."""
    import zenoh
    from zenoh_floor import Events, config

    with zenoh.open(config(port, listen=True)) as rx, zenoh.open(config(port, listen=False)) as tx:
        sub = rx.declare_subscriber("bench/data", zenoh.handlers.FifoChannel(count + 1))
        pub = tx.declare_publisher("bench/data", congestion_control=zenoh.CongestionControl.BLOCK, express=False)
        time.sleep(0.5)
        payload = bytes(8)
        for seq in range(count):
            pub.put(payload, attachment=b'{"seq":%d,"ts":%d}' % (seq, time.time_ns()))
        time.sleep(1.0)
        events = Events("data")
        got = 0
        start = time.thread_time_ns()
        while got < count:
            event = events.event(sub.recv())
            if event["type"] != "INPUT" or event["id"] == "end":
                break
            got += 1
            if len(event["value"]) != 8:
                raise SystemExit("a value of the wrong length")
        spent = time.thread_time_ns() - start
        sub.undeclare()
        pub.undeclare()
    return {"stage": "floor", "ns_per_msg": round(spent / got), "messages": got, "lost": events.lost}


def _wait_for(done: Path, tx: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not done.exists():
        if tx.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the sender never filled the FIFO (exit code {tx.returncode})")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default=",".join(STAGES), help=f"of {', '.join(STAGES)} (default: all)")
    ap.add_argument("--count", type=int, default=300_000, help="messages per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=1, help="the CPU every run is pinned to")
    ap.add_argument("--port", type=int, default=7691)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--role", choices=["send", "read", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--done", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "send":
        send(args.count, args.endpoint, args.done)
        return
    if args.role in ("read", "floor"):
        result = read(args.stage, args.count, args.port) if args.role == "read" else floor(args.count, args.port)
        print(json.dumps(result))
        return
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        ap.error(f"unknown stage(s) {', '.join(sorted(unknown))}: choose from {', '.join(STAGES)}")
    runs: dict[str, list[dict]] = {s: [] for s in [*stages, "floor"]}
    for _ in range(args.runs):  # taking turns, so slow drift touches every stage alike
        for stage in runs:
            role = ["--role", "floor"] if stage == "floor" else ["--role", "read", "--stage", stage]
            out = subprocess.run(["taskset", "-c", str(args.cpu), sys.executable, __file__, *role,
                                  "--count", str(args.count), "--port", str(args.port)],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode:
                raise SystemExit(f"{stage}: exit code {out.returncode}\n{out.stderr[-2000:]}")
            runs[stage].append(json.loads(out.stdout.strip().splitlines()[-1]))
    figures = {stage: [run["ns_per_msg"] for run in results] for stage, results in runs.items()}
    base = statistics.median(figures["floor"])
    print(f"{'stage':8} {'ns/msg':>8} {'range':>13} {'x floor':>8}   ({args.count:,} messages, CPU {args.cpu}, "
          f"load {os.getloadavg()[0]:.1f})")
    for stage, values in figures.items():
        median = statistics.median(values)
        print(f"{stage:8} {median:8.0f} {min(values):6}-{max(values):<6} {median / base:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"count": args.count, "cpu": args.cpu, "runs": runs,
                                               "median_ns_per_msg": {s: statistics.median(v) for s, v in figures.items()}},
                                              indent=1))


if __name__ == "__main__":
    main()
