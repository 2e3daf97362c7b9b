"""The recorder: one more Zenoh subscriber of the dataflow, writing what it hears to MCAP.

It never slows the dataflow down: the Zenoh callback only copies the sample into a
bounded in-memory buffer (and counts a drop, per key, when the buffer is full); a thread
of its own writes the buffer to disk. Senders publish with congestion control BLOCK, so a
recorder that blocked in its callback would stall them: it never does.

It ends on Ctrl-C (:meth:`stop`), after a duration, or when the dataflow ends (the runner's
liveliness token goes). As a *reader* (``run --record``) it also declares a node token, so
every node's start barrier waits for it: it hears the first message of every source.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh.node.end_of_stream import acknowledge
from dora_zenoh.record import mapping as m
from dora_zenoh.record.writer import BagWriter
from dora_zenoh.wire import keys, zconfig

RECORDER_ID = keys.RECORDER_NODE  # the node id a ``run --record`` recorder announces itself as
DEFAULT_BUFFER = 512 << 20     # bytes held in memory before messages are dropped
SWITCH_INTERVAL = 0.0002      # s: see Recorder.start
FIFO_SAMPLES = 100_000         # samples Zenoh may queue for the drain thread before it waits
QUIET_AFTER_END = 2.0          # s: after the runner's token goes, how long nothing may arrive before we end


@dataclass
class RecordStats:
    """What the recording cost, so that its limits can be told with figures (``bench.py --cases
    record``, the summary): CPU per stage, and how full the buffer got."""
    messages: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0          # first to last message received
    process_cpu_s: float = 0.0    # the whole recorder process (Zenoh's threads too) while it recorded
    receive_cpu_s: float = 0.0    # the drain thread(s): FIFO -> buffer (Python's per-sample work)
    write_cpu_s: float = 0.0      # the writer thread: MCAP records, compression, disk
    peak_buffer_bytes: int = 0
    buffer_bytes: int = 0

    def us_per_message(self, cpu_s: float) -> float:
        return cpu_s / self.messages * 1e6 if self.messages else 0.0

    def writer_rate(self) -> tuple[float, float]:
        """What the writer thread alone could take, on one core: messages/s and MB/s."""
        if not self.write_cpu_s:
            return 0.0, 0.0
        return self.messages / self.write_cpu_s, self.payload_bytes / self.write_cpu_s / 1e6

    def to_metadata(self) -> dict[str, str]:
        return {k: f"{v:.6g}" if isinstance(v, float) else str(v) for k, v in dataclasses.asdict(self).items()}

    def summary(self) -> str:
        us = self.us_per_message
        rate, mbs = self.writer_rate()
        other = max(0.0, self.process_cpu_s - self.receive_cpu_s - self.write_cpu_s)
        got = self.messages / self.seconds if self.seconds > 0 else 0.0
        return (f"[dora-zenoh] recorder: {self.messages} message(s), {self.payload_bytes / 1e6:.1f} MB in "
                f"{self.seconds:.1f} s ({got:.0f} msg/s); CPU {self.process_cpu_s:.2f} s = "
                f"{us(self.process_cpu_s):.1f} µs/message (Zenoh threads {us(other):.1f}, receive "
                f"{us(self.receive_cpu_s):.1f}, write {us(self.write_cpu_s):.1f}: the writer alone takes "
                f"{rate:.0f} msg/s, {mbs:.0f} MB/s); buffer peak {self.peak_buffer_bytes / 1e6:.1f} MB of "
                f"{self.buffer_bytes / 1e6:.0f} MB")


@dataclass
class RecordResult:
    paths: list[Path]
    counts: dict[str, int]
    drops: dict[str, int]
    reason: str
    errors: list[str] = field(default_factory=list)
    stats: RecordStats | None = None
    unseen: dict[str, int] = field(default_factory=dict)  # sent (end-of-stream) but never received

    def summary(self) -> str:
        lost = sum(self.drops.values())
        lines = [f"[dora-zenoh] recorded {sum(self.counts.values())} message(s) on {len(self.counts)} topic(s) "
                 f"into {', '.join(str(p) for p in self.paths)} ({self.reason})"]
        for key in sorted(set(self.counts) | set(self.drops)):
            dropped = self.drops.get(key, 0)
            lines.append(f"  {key}: {self.counts.get(key, 0)}" + (f", DROPPED {dropped}" if dropped else ""))
        if lost:
            lines.append(f"[dora-zenoh] {lost} message(s) were dropped: the disk could not keep up and the "
                         "buffer was full (raise --buffer, or use --compression lz4/none); the counts are "
                         "in the file's metadata (dora-zenoh.drops)")
        if self.unseen:
            lines.append(f"[dora-zenoh] {sum(self.unseen.values())} message(s) their senders sent never reached "
                         "the recorder (" + ", ".join(f"{k}: {n}" for k, n in sorted(self.unseen.items())) +
                         "): see `bag info`")
        if self.stats is not None:
            lines.append(self.stats.summary())
        lines += [f"[dora-zenoh] error: {e}" for e in self.errors]
        return "\n".join(lines)


class Recorder:
    """Record keys of a dataflow (or of every dataflow) into ``path``."""

    def __init__(self, writer: BagWriter, *, endpoint: str, prefix: str, dataflow: str | None,
                 topics: list[str] | None = None, buffer_bytes: int = DEFAULT_BUFFER,
                 reader_id: str | None = None) -> None:
        self.writer = writer
        self.endpoint, self.prefix, self.dataflow = endpoint, prefix, dataflow
        self.topics = topics or []
        self.buffer_bytes = buffer_bytes
        self.reader_id = reader_id
        self._queue: deque[tuple[str, bytes, str, bytes | None, int]] = deque()
        self._in_bytes = 0   # written by the Zenoh callback only
        self._out_bytes = 0  # written by the writer thread only
        self.drops: dict[str, int] = {}
        self._stop = threading.Event()
        self._done = threading.Event()
        self.reason = "stopped"
        self.runner_seen = threading.Event()
        self.runner_gone_at: float | None = None
        self._session: zenoh.Session | None = None
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        # End-of-stream notices: messages each output sent (its process's last count), and the
        # last seq the writer saw per key: the recording ends once every notice is met.
        self.sent: dict[str, int] = {}
        self.last_seq: dict[str, int] = {}
        self._last_rx = time.monotonic()
        self._first_rx: float | None = None
        self._eos_zid: dict[str, str] = {}  # node -> the session id in its end-of-stream notice
        self.gaps: dict[str, int] = {}       # seq gaps per key, as the writer saw them
        self._peak = 0                       # most bytes held in the buffer at once
        self._payload_bytes = 0              # written by the writer thread only
        self._cpu: dict[str, float] = {}     # thread CPU seconds, by stage, when each thread ends
        self._cpu_lock = threading.Lock()
        self._process_cpu0 = time.process_time()

    def key_exprs(self) -> list[str]:
        """What to subscribe to: the given topics (``node/output`` or full keys), else everything."""
        base = f"{self.prefix}/{self.dataflow}" if self.dataflow else self.prefix
        if not self.topics:
            return [f"{base}/**"]
        return [t if t.startswith(self.prefix + "/") else f"{base}/{t}" for t in self.topics]

    def start(self) -> None:
        # The drain thread and the writer thread share the GIL; with Python's 5 ms switch
        # interval the drain falls behind in bursts. A short interval keeps it close.
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._process_cpu0 = time.process_time()
        session = zenoh.open(zconfig.peer_config([self.endpoint], [zconfig.node_listen_endpoint(self.endpoint)]))
        self._session = session
        self._thread = threading.Thread(target=self._write_loop, name="recorder-writer", daemon=True)
        self._thread.start()
        self._decls: list[Any] = []  # kept referenced: a dropped token is undeclared
        self._drains: list[threading.Thread] = []
        for expr in self.key_exprs():
            # Zenoh's own thread queues samples in a Rust FIFO without waiting for the GIL, so the
            # socket is read at network speed whatever Python does; our drain thread copies them out.
            sub = session.declare_subscriber(expr, zenoh.handlers.FifoChannel(FIFO_SAMPLES))
            self._decls.append(sub)
            drain = threading.Thread(target=self._drain, args=(sub,), name="recorder-drain", daemon=True)
            drain.start()
            self._drains.append(drain)
        if self.dataflow:
            root = keys.live_root(self.prefix, self.dataflow)
            self._decls.append(session.liveliness().declare_subscriber(
                root + "/runner", zenoh.handlers.Callback(self._on_runner, indirect=False), history=True))
            self._decls.append(session.declare_subscriber(
                keys.eos_key(self.prefix, self.dataflow, "*"), zenoh.handlers.Callback(self._on_eos, indirect=False)))
            if self.reader_id:  # joins every node's start barrier (see module docstring)
                self._decls.append(session.liveliness().declare_token(
                    keys.node_token(self.prefix, self.dataflow, self.reader_id)))

    # -- receiving: never block --------------------------------------------------------------
    def _drain(self, sub: Any) -> None:
        """Move samples from the subscriber's FIFO into the buffer (blocking, GIL released while
        it waits) until the session is closed and the FIFO is empty."""
        on_sample, try_recv = self._on_sample, sub.try_recv
        try:
            while True:
                try:
                    sample = sub.recv()
                except Exception:  # the session is closed and the FIFO empty
                    return
                while sample is not None:
                    on_sample(sample)
                    # What is queued already is taken without letting go of the GIL: recv()
                    # releases it on every call, handing it to the writer thread for each message.
                    try:
                        sample = try_recv()
                    except Exception:
                        sample = None
        finally:
            self._add_cpu("receive", time.thread_time())

    def _on_sample(self, sample: zenoh.Sample) -> None:
        self._last_rx = now = time.monotonic()
        if self._first_rx is None:
            self._first_rx = now
        key = str(sample.key_expr)
        payload = sample.payload.to_bytes()
        att = sample.attachment
        size = len(payload) + 64
        held = self._in_bytes - self._out_bytes + size
        if held > self.buffer_bytes:
            self.drops[key] = self.drops.get(key, 0) + 1
            return
        if held > self._peak:
            self._peak = held
        self._in_bytes += size
        self._queue.append((key, payload, str(sample.encoding), att.to_bytes() if att is not None else None,
                            time.time_ns()))

    def _on_eos(self, sample: zenoh.Sample) -> None:
        try:
            notice = json.loads(sample.payload.to_bytes())
            node, outputs = notice["node"], notice["outputs"]
            if isinstance(notice.get("zid"), str):
                self._eos_zid[node] = notice["zid"]
                if self.reader_id and self._session is not None:
                    # A sender that exits first waits for its readers to have its notice (then
                    # everything it sent is in us, at least in the FIFO): acknowledge like a node.
                    acknowledge(self._session, keys.ack_key(self.prefix, self.dataflow or "", str(node),
                                                           self.reader_id), notice["zid"])
            wanted = [zenoh.KeyExpr(e) for e in self.key_exprs()]
            for out, count in outputs.items():
                key = keys.data_key(self.prefix, self.dataflow or "", f"{node}/{out}")
                if any(w.intersects(zenoh.KeyExpr(key)) for w in wanted):
                    self.sent[key] = int(count)
        except (ValueError, KeyError, TypeError, AttributeError, zenoh.ZError):
            return  # not a notice we understand: the quiet period still ends the recording

    def _add_cpu(self, stage: str, seconds: float) -> None:
        with self._cpu_lock:
            self._cpu[stage] = self._cpu.get(stage, 0.0) + seconds

    def _complete(self) -> bool:
        """Every key we recorded announced its end, and its last message has been written.

        Its end-of-stream notice travels behind its messages on the same link, so until the
        notice is here, messages may still be on their way (a busy machine delays them by
        seconds). A key without a notice (its sender crashed) ends by the quiet period.
        """
        sent = dict(self.sent)
        return all(k in sent and self.last_seq.get(k, -1) + 1 >= sent[k] for k in list(self.last_seq))

    def _on_runner(self, sample: zenoh.Sample) -> None:
        if sample.kind == zenoh.SampleKind.PUT:
            self.runner_seen.set()
        else:
            self.runner_gone_at = time.monotonic()

    # -- the writer thread -------------------------------------------------------------------
    def _write_loop(self) -> None:
        q, writer, last_seq, gaps = self._queue, self.writer, self.last_seq, self.gaps
        hints: dict[str, int] = {}
        # Before a key's first message: seq -1 for a recorder in the start barrier (`run
        # --record`: it misses nothing of a sender); else what it gets first, as `bag info` counts
        # (an attached recorder called the messages sent before it came lost)
        before_first = -1 if self.reader_id else None
        try:
            while True:
                try:
                    key, payload, enc, att, t = q.popleft()
                except IndexError:
                    if self._done.is_set():
                        return
                    time.sleep(0.002)
                    continue
                n = hints.get(key, 0)
                hints[key] = n + 1
                seq = writer.write(key, payload, enc, att, t, n)
                if seq is not None:
                    prev = last_seq.get(key, before_first)
                    if prev is not None and seq > prev + 1:
                        gaps[key] = gaps.get(key, 0) + seq - prev - 1
                    last_seq[key] = seq
                self._payload_bytes += len(payload)
                self._out_bytes += len(payload) + 64
        except Exception as exc:  # disk full, ...: stop recording, keep what was written
            self._error = f"writing the recording failed: {exc}"
            self._stop.set()
        finally:
            self._add_cpu("write", time.thread_time())

    # -- running -----------------------------------------------------------------------------
    def stop(self, reason: str = "interrupted") -> None:
        """Ask the recording to end (thread- and signal-safe)."""
        if not self._stop.is_set():
            self.reason = reason
            self._stop.set()

    def run(self, duration: float | None = None) -> RecordResult:
        """Record until :meth:`stop`, ``duration`` seconds, or the dataflow's end; then close the file."""
        deadline = time.monotonic() + duration if duration else None
        while not self._stop.wait(0.05):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self.stop("duration reached")
            elif self.runner_gone_at is not None and not self._queue and (
                    self._complete() or now - max(self._last_rx, self.runner_gone_at) >= QUIET_AFTER_END):
                self.stop("the dataflow ended")
        return self.finish()

    def finish(self) -> RecordResult:
        session, self._session = self._session, None
        if session is not None:
            session.close()  # nothing new arrives; the drains empty the FIFOs, then end
        for drain in getattr(self, "_drains", []):
            drain.join(30)
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        errors = [self._error] if self._error else []
        # what the writer thread could not write any more (after an error) counts as dropped
        for key, *_ in self._queue:
            self.drops[key] = self.drops.get(key, 0) + 1
        stats = self.stats()
        try:
            paths = self.writer.close(self.drops, self.sent, {m.META_STATS: stats.to_metadata()})
        except Exception as exc:
            errors.append(f"closing the recording failed: {exc}")
            paths = list(self.writer.paths)
        return RecordResult(paths, dict(self.writer.counts), dict(self.drops), self.reason, errors, stats,
                            self.unseen())

    def unseen(self) -> dict[str, int]:
        """Per key, messages its sender numbered (seq gaps, or after the last one per its
        end-of-stream notice) that never reached us and that we did not drop ourselves (our
        drops are gaps in what we wrote too: they were counted twice)."""
        out = dict(self.gaps)
        for key, count in self.sent.items():
            tail = count - (self.last_seq.get(key, -1) + 1)
            if tail > 0:
                out[key] = out.get(key, 0) + tail
        return {k: n - self.drops.get(k, 0) for k, n in out.items() if n - self.drops.get(k, 0) > 0}

    def stats(self) -> RecordStats:
        """The recording's cost so far (complete once its threads have ended: :meth:`finish`)."""
        first = self._first_rx
        return RecordStats(
            messages=sum(self.writer.counts.values()), payload_bytes=self._payload_bytes,
            seconds=self._last_rx - first if first is not None else 0.0,
            process_cpu_s=time.process_time() - self._process_cpu0, receive_cpu_s=self._cpu.get("receive", 0.0),
            write_cpu_s=self._cpu.get("write", 0.0), peak_buffer_bytes=self._peak, buffer_bytes=self.buffer_bytes)


def keep_freed_memory() -> bool:
    """For a recorder process (``dora-zenoh record``): glibc gives each large payload fresh pages
    from mmap (and trims the heap back), so copying a 1 MiB message out of Zenoh page-faults on
    every 4 KiB page; keeping freed memory for reuse halves those faults (docs/record-replay.md).
    The process keeps its peak memory, which ``--buffer`` bounds. Best effort (glibc only);
    returns whether it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        # M_MMAP_THRESHOLD (-3): payloads below 32 MiB come from the heap; M_TRIM_THRESHOLD (-1)
        return bool(libc.mallopt(-3, 32 << 20)) and bool(libc.mallopt(-1, 1 << 30))
    except (OSError, AttributeError):
        return False


def open_recorder(path: Path, *, endpoint: str, prefix: str, dataflow: str | None, topics: list[str] | None,
                  compression: str = "zstd", split_size: int | None = None, split_duration: float | None = None,
                  buffer_bytes: int = DEFAULT_BUFFER, reader_id: str | None = None,
                  foxglove_json: bool = False) -> Recorder:
    """A started recorder (its file created, its subscriptions declared)."""
    writer = BagWriter(path, prefix=prefix, dataflow=dataflow, compression=compression, split_size=split_size,
                       split_duration=split_duration, foxglove_json=foxglove_json)
    rec = Recorder(writer, endpoint=endpoint, prefix=prefix, dataflow=dataflow, topics=topics,
                   buffer_bytes=buffer_bytes, reader_id=reader_id)
    try:
        rec.start()
    except BaseException:
        rec.finish()
        raise
    return rec


__all__ = ["Recorder", "RecordResult", "RecordStats", "open_recorder", "RECORDER_ID", "DEFAULT_BUFFER"]
