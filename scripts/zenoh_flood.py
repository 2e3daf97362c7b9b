#!/usr/bin/env python3
"""The throughput floor under dora-zenoh: bench_nodes/flood_tx.py + flood_rx.py in plain zenoh-python.

Same protocol: tx sends COUNT messages of SIZE bytes in windows of WINDOW and waits for rx's
acknowledgement after each window (a lost message is a missing ack, reported, never hidden);
rx turns every payload into bytes, as a node that reads its input would. Publishers use
congestion control BLOCK and Zenoh's batching (not express), as dora-zenoh's outputs read by
`queue_policy: block` inputs do. rx listens, tx connects (bench_machines.py runs them on two
machines).

    python zenoh_flood.py rx --host 10.0.0.2 --port 7556 --ready-file /tmp/ready --result rx.json &
    python zenoh_flood.py tx --host 10.0.0.2 --port 7556 --size 65536 --count 2000 --window 50 --result tx.json
"""
from __future__ import annotations

import argparse
import json
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

import zenoh
from zenoh_floor import (
    READERS,
    READERS_HELP,
    Events,
    Out,
    Stopped,
    config,
    inbound,
    stop_on_signals,
    wait_matching,
)


def rx(args: argparse.Namespace) -> None:
    """Count and acknowledge until tx says done (or --max-seconds; --reader thread or events: until --count); write the count."""
    done = threading.Event()
    if args.reader == "callback":
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    state = {"received": 0, "wrong_size": 0}
    with zenoh.open(config(args.port, listen=True, host=args.host, shm=False)) as session:
        ack = session.declare_publisher("bench/ack", congestion_control=zenoh.CongestionControl.BLOCK, express=True)

        def on_data(sample: zenoh.Sample) -> None:
            data = sample.payload.to_bytes()
            state["received"] += 1
            if len(data) != args.size:
                state["wrong_size"] += 1
            if state["received"] % args.window == 0:
                ack.put(b"\x01")

        # thread: as a dora node's `for event in node`, a FIFO of the window's size (the bench's queue_size)
        handler = (zenoh.handlers.Callback(on_data, indirect=False) if args.reader == "callback"
                   else zenoh.handlers.FifoChannel(args.window))
        data_sub: Any = inbound(session, "bench/data", handler, args.advanced)
        if args.advanced:
            def on_miss(miss: object) -> None:
                state["missed"] = state.get("missed", 0) + miss.nb  # type: ignore[attr-defined]
            subs_extra = [data_sub.sample_miss_listener(zenoh.handlers.Callback(on_miss, indirect=False))]
        else:
            subs_extra = []
        subs = [*subs_extra, data_sub,
                session.declare_subscriber("bench/done", lambda _s: done.set())]
        Path(args.ready_file).write_text("ready")
        if args.reader != "callback":
            stop_on_signals(args.max_seconds)
            try:
                if args.reader == "events":
                    read_events(data_sub, ack, state, args)
                while state["received"] < args.count:
                    on_data(data_sub.recv())
            except Stopped:
                pass
            signal.setitimer(signal.ITIMER_REAL, 0)
        else:
            done.wait(args.max_seconds)
        for s in subs:
            s.undeclare()
    Path(args.result).write_text(json.dumps(state))


def read_events(sub: Any, ack: Any, state: dict, args: argparse.Namespace) -> None:
    """``--reader events``: bench_nodes/flood_rx.py's loop over the events a dora node would get
    (see zenoh_floor.Events); what the sender's numbers say was lost goes in ``state``."""
    events = Events("data")
    try:
        while state["received"] < args.count:
            event = events.event(sub.recv())
            if event["type"] == "STOP":
                break
            if event["type"] != "INPUT":
                continue
            if event["id"] == "done":
                break
            state["received"] += 1
            if len(event["value"]) != args.size:
                state["wrong_size"] += 1
            if state["received"] % args.window == 0:
                ack.put(b"\x01")
    finally:
        state["lost"], state["next_seq"] = events.lost, events.next_seq


def tx(args: argparse.Namespace) -> None:
    """Send windows until COUNT or a missing ack; write what was acknowledged and how fast."""
    acks: queue.SimpleQueue = queue.SimpleQueue()
    with zenoh.open(config(args.port, listen=False, host=args.host, shm=False)) as session:
        # as dora-zenoh's outputs (replayed or not); numbered for a reader that counts as they do
        pub = Out(session, "bench/data", args.advanced, express=False, numbered=args.reader == "events")
        sub = session.declare_subscriber("bench/ack", zenoh.handlers.Callback(acks.put, indirect=False))
        wait_matching(pub.probe, 30)
        payload = bytes(args.size)
        sent = acknowledged = 0
        missing_ack_after = None
        t0 = last_ack = time.perf_counter()
        while sent < args.count:
            for _ in range(args.window):
                pub.put(payload)
            sent += args.window
            try:
                acks.get(timeout=args.ack_timeout)
            except queue.Empty:
                missing_ack_after = sent
                break
            acknowledged = sent
            last_ack = time.perf_counter()
        session.put("bench/done", b"", congestion_control=zenoh.CongestionControl.BLOCK)
        time.sleep(0.5)  # close() is no flush (shared/ZENOH_NOTES.md); the harness also ends rx
        sub.undeclare()
    elapsed = last_ack - t0
    Path(args.result).write_text(json.dumps({
        "size": args.size, "window": args.window, "sent": sent, "acknowledged": acknowledged,
        "missing_ack_after": missing_ack_after, "elapsed_s": elapsed,
        "msgs_per_s": acknowledged / elapsed if acknowledged else None,
        "MB_per_s": acknowledged * args.size / elapsed / 1e6 if acknowledged else None}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", choices=["tx", "rx"])
    ap.add_argument("--host", default="127.0.0.1", help="address rx listens on")
    ap.add_argument("--port", type=int, default=7556)
    ap.add_argument("--size", type=int, default=65536)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--ack-timeout", type=float, default=10.0)
    ap.add_argument("--advanced", action="store_true",
                    help="Zenoh's advanced publisher (cache, heartbeat) and subscriber (recovery), as dora-zenoh's "
                         "replay path across machines")
    ap.add_argument("--reader", choices=READERS, default="callback",
                    help="rx's reader, until --count unless callback (tx: numbers its messages for events): "
                         + READERS_HELP)
    ap.add_argument("--result", required=True)
    ap.add_argument("--ready-file", help="rx: written once it is subscribed")
    ap.add_argument("--max-seconds", type=float, default=600)
    args = ap.parse_args()
    (tx if args.role == "tx" else rx)(args)


if __name__ == "__main__":
    main()
