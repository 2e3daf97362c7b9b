#!/usr/bin/env python3
"""The floor under dora-zenoh: the bench ping-pong in plain zenoh-python.

No middleware on top: two peer sessions on loopback, multicast scouting off,
shared memory left at Zenoh's default. Both sides turn every payload into
Python bytes, as a real node that reads its input would, so the figure is
what any Python program on Zenoh pays. bench.py runs it for --compare:

    python zenoh_floor.py pong --port 7555 --ready-file /tmp/ready &
    python zenoh_floor.py ping --port 7555 --result out.json
"""
from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path
from typing import Any

import zenoh
import zenoh.ext as zext


def config(port: int, listen: bool, host: str = "127.0.0.1", shm: bool = True) -> zenoh.Config:
    """A peer config (loopback unless ``host`` says otherwise); pong listens, ping connects (no scouting wait)."""
    conf = zenoh.Config()
    if not shm:
        conf.insert_json5("transport/shared_memory/enabled", "false")
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/delay", "0")
    endpoint = json.dumps([f"tcp/{host}:{port}"])
    if listen:
        conf.insert_json5("listen/endpoints", endpoint)
    else:
        conf.insert_json5("listen/endpoints", "[]")
        conf.insert_json5("connect/endpoints", endpoint)
    return conf


REPLAY_MESSAGES, REPLAY_BYTES = 256, 64 << 20  # dora-zenoh's defaults (DORA_ZENOH_REPLAY_MESSAGES/_BYTES)
READERS = ["callback", "thread", "events"]
READERS_HELP = ("callback: inside Zenoh's callback (the floor of any Python program); thread: from a FIFO "
                "channel on the program's own thread (a dora node's shape); events: the same, building for "
                "each message what dora's API hands a node (see Events), senders numbering theirs as dora-zenoh's do")
_SEQ_NEXT = b'{"seq":%d,'


class Events:
    """``--reader events``: the least a runtime offering dora's event API in Python does per message,
    with no middleware code: the sender's sequence number checked (a gap counted as lost, as
    dora-zenoh's inputs count it) and a dict event whose value is the payload as a pyarrow
    ``UInt8Array`` (dora's ``event["value"]``). What dora-zenoh's node thread does beyond this is its own."""

    def __init__(self, input_id: str) -> None:
        import pyarrow as pa  # only this mode needs it
        self._id = input_id
        self._u8, self._from_buffers, self._py_buffer = pa.uint8(), pa.Array.from_buffers, pa.py_buffer
        self.next_seq = 0
        self.lost = 0

    def event(self, sample: zenoh.Sample) -> dict:
        att = sample.attachment
        raw = att.to_bytes() if att is not None else b""
        if raw.startswith(_SEQ_NEXT % self.next_seq):
            self.next_seq += 1
        else:
            try:
                seq = int(json.loads(raw)["seq"])
            except (ValueError, KeyError, TypeError):  # not numbered: nothing to count by
                seq = None
            if seq is not None:
                self.lost += max(0, seq - self.next_seq)
                self.next_seq = seq + 1
        data = sample.payload.to_bytes()
        return {"type": "INPUT", "id": self._id, "metadata": raw,
                "value": self._from_buffers(self._u8, len(data), [None, self._py_buffer(data)])}


class Out:
    """A BLOCK publisher (express unless told); with ``advanced``, Zenoh's advanced one as dora-zenoh's replay
    uses it across machines: a cache of 256 messages or 64 MiB, whichever holds fewer of the
    largest message so far (declared again when a larger one needs a smaller cache), a
    heartbeat every 0.5 s."""

    def __init__(self, session: zenoh.Session, key: str, advanced: bool, express: bool = True,
                 numbered: bool = False) -> None:
        self.session, self.key, self.advanced, self.kept, self.largest = session, key, advanced, 0, -1
        self.seq = 0 if numbered else None  # numbered: dora-zenoh's attachment on every message (see Events)
        options = {"congestion_control": zenoh.CongestionControl.BLOCK, "express": express}
        self.options = {**options, "priority": zenoh.Priority.DATA_HIGH} if advanced else options
        self.pub = None if advanced else session.declare_publisher(key, **options)
        # what the harness waits on: an advanced publisher has no matching status, a plain one has
        self.probe = session.declare_publisher(key) if advanced else self.pub

    def put(self, payload: Any) -> None:
        if self.advanced:
            self._fit(len(payload))
        if self.seq is None:
            self.pub.put(payload)  # type: ignore[union-attr]
            return
        self.pub.put(payload, attachment=b'{"seq":%d,"ts":%d}' % (self.seq, time.time_ns()))  # type: ignore[union-attr]
        self.seq += 1

    def _fit(self, size: int) -> None:
        if size <= self.largest:
            return
        self.largest = size
        kept = max(1, min(REPLAY_MESSAGES, REPLAY_BYTES // max(size, 1)))
        if self.pub is not None and kept >= self.kept:
            return
        old, self.kept = self.pub, kept
        self.pub = zext.declare_advanced_publisher(
            self.session, self.key, cache=zext.CacheConfig(kept),
            sample_miss_detection=zext.MissDetectionConfig(heartbeat=0.5), **self.options)  # type: ignore[call-arg]
        if old is not None:
            old.undeclare()


def inbound(session: zenoh.Session, key: str, handler: object, advanced: bool) -> object:
    """A subscriber; with ``advanced``, Zenoh's advanced one recovering by heartbeat, as dora-zenoh's."""
    if advanced:
        return zext.declare_advanced_subscriber(session, key, handler,
                                                recovery=zext.RecoveryConfig(heartbeat=True))  # type: ignore[call-arg]
    return session.declare_subscriber(key, handler)


class Stopped(Exception):
    """Raised by SIGTERM/SIGINT/SIGALRM in a reader that waits in ``recv()`` (Zenoh checks signals there)."""


def stop_on_signals(max_seconds: float) -> None:
    """End the reader's loop on SIGTERM, SIGINT or after ``max_seconds``, whichever comes first."""
    def stop(*_: object) -> None:
        raise Stopped
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, stop)
    signal.setitimer(signal.ITIMER_REAL, max_seconds)


def pong(args: argparse.Namespace) -> None:
    """Echo each ping as bytes until SIGTERM/SIGINT; the session is always closed (else exit hangs).

    ``--reader callback`` echoes inside Zenoh's callback, on Zenoh's receive thread: the floor of
    any Python program. ``--reader thread`` takes each ping from a FIFO channel on the program's
    own thread, the shape of a dora node (whose API pulls its events) and of zenoh-python's
    ``for sample in subscriber`` idiom: one more thread wake-up per message. ``--reader events``
    does the same, makes each ping the event a dora node gets (:class:`Events`) and forwards
    its payload, numbered, as bench_nodes/pong.py forwards ``event["value"]``.
    """
    events = Events("ping") if args.reader == "events" else None
    with zenoh.open(config(args.port, listen=True, host=args.host, shm=not args.no_shm)) as session:
        pub = Out(session, "bench/pong", args.advanced, numbered=events is not None)
        if args.reader != "callback":
            sub = inbound(session, "bench/ping", zenoh.handlers.FifoChannel(16), args.advanced)
        else:
            sub = inbound(session, "bench/ping", zenoh.handlers.Callback(lambda s: pub.put(s.payload.to_bytes()),
                                                                        indirect=False), args.advanced)
        if args.ready_file:
            Path(args.ready_file).write_text("ready")
        stop_on_signals(args.max_seconds)
        try:
            if events is not None:  # forwards the value it got, as bench_nodes/pong.py does
                while True:
                    sample = sub.recv()  # type: ignore[attr-defined]
                    events.event(sample)
                    pub.put(sample.payload)
            if args.reader == "thread":
                while True:
                    pub.put(sub.recv().payload.to_bytes())  # type: ignore[attr-defined]
            while True:
                signal.pause()
        except Stopped:
            pass
        signal.setitimer(signal.ITIMER_REAL, 0)
        sub.undeclare()  # type: ignore[attr-defined]


def wait_matching(pub: zenoh.Publisher, timeout: float) -> None:
    """Block until pong subscribes, so no ping is sent into the void."""
    deadline = time.monotonic() + timeout
    while not pub.matching_status.matching:
        if time.monotonic() > deadline:
            raise SystemExit("pong never subscribed")
        time.sleep(0.01)


def measure(pub: Out, sub: Any, size: int, rounds: int, warmup: int, events: Events | None = None) -> dict:
    """Round trips of `size` bytes; one-way figures are half of them; CPU of this process per round trip.
    ``events``: each echo becomes an event (see Events), as bench_nodes/ping.py gets it."""
    payload = bytes(size)
    rtts: list[int] = []
    cpu0 = 0
    for i in range(warmup + rounds):
        if i == warmup:
            cpu0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        pub.put(payload)
        sample = sub.recv()
        data = sample.payload.to_bytes() if events is None else events.event(sample)["value"]
        t1 = time.perf_counter_ns()
        if len(data) != size:
            raise SystemExit(f"echo of size {size} came back with {len(data)} bytes")
        if i >= warmup:
            rtts.append(t1 - t0)
    cpu_ns = time.process_time_ns() - cpu0
    rtts.sort()
    return {"one_way_p50_us": rtts[len(rtts) // 2] / 2000,
            "one_way_p90_us": rtts[min(len(rtts) - 1, int(len(rtts) * 0.9))] / 2000,
            "rounds": len(rtts), "cpu_us": cpu_ns / len(rtts) / 1000}


def ping(args: argparse.Namespace) -> None:
    """Measure every size and write the same JSON shape as bench_nodes/ping.py."""
    sizes = [int(s) for s in args.sizes.split(",")]
    events = Events("pong") if args.reader == "events" else None
    with zenoh.open(config(args.port, listen=False, host=args.host, shm=not args.no_shm)) as session:
        pub = Out(session, "bench/ping", args.advanced, numbered=events is not None)
        sub = inbound(session, "bench/pong", zenoh.handlers.FifoChannel(16), args.advanced)
        wait_matching(pub.probe, 10)
        report = {str(size): measure(pub, sub, size, args.rounds, args.warmup, events) for size in sizes}
    Path(args.result).write_text(json.dumps(report))


def main() -> None:
    """Parse the role and run it."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", choices=["ping", "pong"])
    ap.add_argument("--port", type=int, default=7555, help="loopback TCP port pong listens on")
    ap.add_argument("--host", default="127.0.0.1", help="address pong listens on (another machine's: see bench_machines.py)")
    ap.add_argument("--no-shm", action="store_true", help="no shared memory (processes in different network namespaces)")
    ap.add_argument("--sizes", default="8,1024,65536,1048576,4194304", help="payload sizes in bytes")
    ap.add_argument("--rounds", type=int, default=300, help="measured round trips per size")
    ap.add_argument("--warmup", type=int, default=30, help="unmeasured round trips per size")
    ap.add_argument("--advanced", action="store_true",
                    help="Zenoh's advanced publisher (cache, heartbeat) and subscriber (recovery), as dora-zenoh's "
                         "replay path across machines")
    ap.add_argument("--reader", choices=READERS, default="callback",
                    help="pong's reader (ping's too with events): " + READERS_HELP)
    ap.add_argument("--result", default="zenoh_floor.json", help="ping: where the JSON goes")
    ap.add_argument("--ready-file", help="pong: written once it is subscribed")
    ap.add_argument("--max-seconds", type=float, default=600, help="pong: exit after this long anyway")
    args = ap.parse_args()
    (ping if args.role == "ping" else pong)(args)


if __name__ == "__main__":
    main()
