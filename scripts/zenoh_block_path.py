#!/usr/bin/env python3
"""A block input's delivery path in plain zenoh-python: the pong side of zenoh_floor.py, two ways.

``fifo``: the main thread reads a Zenoh FIFO channel (filled in Rust, no GIL) and replies.
``marker``: what a dora-zenoh ``queue_policy: block`` input does (dora_zenoh.node.inputs and
inbox): a Python callback on Zenoh's thread queues the sample and wakes the main thread with a
session-local put on a ring channel, which then replies. The difference is that path's cost,
without dora-zenoh (docs/machines.md, Latency and throughput across machines):

    python scripts/zenoh_block_path.py marker --port 17452 --ready-file /tmp/ready &
    python scripts/zenoh_floor.py ping --port 17452 --no-shm --sizes 8,65536 --result out.json
"""
from __future__ import annotations

import argparse
import collections
import signal
import sys
import threading
from pathlib import Path

import zenoh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zenoh_floor import config  # noqa: E402 (a script next to this one)


def main() -> None:
    """Echo every ping until SIGTERM, by the path asked for."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", choices=["fifo", "marker"])
    ap.add_argument("--port", type=int, default=7555)
    ap.add_argument("--ready-file", help="written once it is subscribed")
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with zenoh.open(config(args.port, listen=True, shm=False)) as session:
        pub = session.declare_publisher("bench/pong", congestion_control=zenoh.CongestionControl.BLOCK,
                                        express=True)
        if args.path == "fifo":
            wait = session.declare_subscriber("bench/ping", zenoh.handlers.FifoChannel(16))
            take = wait.recv
        else:
            queued: collections.deque = collections.deque()
            wait = session.declare_subscriber("bench/@mark", zenoh.handlers.RingChannel(64))

            def on_ping(sample: zenoh.Sample) -> None:
                queued.append(sample)
                session.delete("bench/@mark", attachment=b"@dz", allowed_destination=zenoh.Locality.SESSION_LOCAL)

            def take() -> zenoh.Sample:
                wait.recv()
                return queued.popleft()
            keep = session.declare_subscriber("bench/ping", zenoh.handlers.Callback(on_ping, indirect=False))  # noqa: F841
        def echo() -> None:
            while True:
                try:
                    pub.put(take().payload.to_bytes())
                except zenoh.ZError:  # the session closed
                    return

        echoer = threading.Thread(target=echo, daemon=True)
        echoer.start()
        if args.ready_file:
            Path(args.ready_file).write_text("ready")
        stop.wait()  # a blocked recv() would keep a signal handler from running: wait here instead
    # the session is closed: the echo thread's recv() raises, or the process ends under it


if __name__ == "__main__":
    main()
