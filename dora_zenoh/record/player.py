"""The player: publishes recorded messages again, at their recorded pace, byte for byte.

Each message goes out with its recorded payload, encoding and attachment (so ``seq``,
``ts`` and ``params`` arrive as they were sent), in the order the recorder received them,
at ``first + (ts - ts_first) / rate`` on the monotonic clock, ``first`` being when the first
message went out. It sleeps until SPIN_NS before a message's time and spins the rest (a longer
spin makes the player look CPU-bound to the scheduler, which then preempts it more on a busy
machine, and burns a core the live nodes may need), and measures how late each ``put``
returned (the scheduling error). ``realtime`` asks for SCHED_FIFO while playing, which keeps
that error small on a loaded machine (needs CAP_SYS_NICE, e.g. root).

In place of live nodes (``replay --dataflow``) it also plays their part in the dataflow's
protocol: it announces their liveliness tokens, waits for their readers (the start
barrier), and at the end has the runner end them (``DataflowRun.end_stand_in``: a signed
end-of-stream notice, then the ``exited`` fact), so downstream nodes believe it, close their
inputs and the dataflow ends normally.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zenoh

from dora_zenoh.record.reader import Recorded
from dora_zenoh.wire import keys

if TYPE_CHECKING:
    from dora_zenoh.descriptor import Descriptor

SPIN_NS = 300_000  # sleep until this close to a message's time, then spin (see the module docstring)
LATE_NS = 1_000_000  # the timing target: every message out within 1 ms of its time (p99, idle machine)
RT_PRIORITY = 10    # SCHED_FIFO priority with ``realtime`` (low: Zenoh's own threads are not real-time)


@dataclass
class PlayResult:
    sent: dict[str, int]
    errors_ns: list[int] = field(default_factory=list)   # actual - scheduled send time, per message
    put_ns: list[int] = field(default_factory=list)      # how long each put() took (part of the above)
    interrupted: bool = False
    read_ns: int = 0        # time spent getting the next message (reading, decompressing the file)
    realtime: str = ""      # "" (not asked), "SCHED_FIFO", or why it could not be had

    def timing(self) -> dict[str, float]:
        """Scheduling error in µs: p50, p99, max (over every message sent)."""
        if not self.errors_ns:
            return {}
        e = sorted(self.errors_ns)

        def q(p: float) -> float:
            return e[min(len(e) - 1, int(p * len(e)))] / 1000

        return {"p50_us": q(0.5), "p99_us": q(0.99), "max_us": e[-1] / 1000, "count": len(e)}

    def stats(self) -> str:
        """``replay --stats``: the scheduling error's distribution, what put() cost, the player's CPU."""
        e, n = sorted(self.errors_ns), len(self.errors_ns)
        if not n:
            return "[dora-zenoh] replay timing: no message was sent"

        def q(values: list[int], p: float) -> float:
            return values[min(len(values) - 1, int(p * len(values)))] / 1000

        put = sorted(self.put_ns)
        late = sum(1 for x in e if x > LATE_NS)
        work_us = (self.read_ns + sum(put)) / n / 1000
        lines = [f"[dora-zenoh] replay timing over {n} message(s) (put returned - scheduled time, µs): "
                 f"p50 {q(e, 0.5):.0f}, p90 {q(e, 0.9):.0f}, p99 {q(e, 0.99):.0f}, p99.9 {q(e, 0.999):.0f}, "
                 f"max {e[-1] / 1000:.0f}; {late} later than {LATE_NS // 1000} µs ({100 * late / n:.2f} %)",
                 f"[dora-zenoh] put() took p50 {q(put, 0.5):.0f} µs, p99 {q(put, 0.99):.0f} µs; reading the "
                 f"next message {self.read_ns / n / 1000:.1f} µs on average: {work_us:.1f} µs of work per message, "
                 f"so at most ~{1e6 / work_us if work_us else 0:.0f} msg/s on time; load average "
                 f"{os.getloadavg()[0]:.1f}"
                 + (f"; priority: {self.realtime}" if self.realtime else "")]
        return "\n".join(lines)

    def summary(self) -> str:
        t = self.timing()
        head = f"[dora-zenoh] replayed {sum(self.sent.values())} message(s) on {len(self.sent)} topic(s)"
        if self.interrupted:
            head += " (interrupted)"
        if t:
            head += (f"; send time vs schedule: p50 {t['p50_us']:.0f} µs, p99 {t['p99_us']:.0f} µs, "
                     f"max {t['max_us']:.0f} µs")
        return head


def wanted(key: str, source: str, topics: list[str] | None = None, nodes: set[str] | None = None) -> bool:
    """Whether a channel is replayed: one of ``topics`` (``node/output`` or keys), of one of ``nodes``."""
    if topics and source not in topics and key not in topics:
        return False
    return nodes is None or source.split("/", 1)[0] in nodes


def select(messages: Iterable[Recorded], *, topics: list[str] | None = None, nodes: set[str] | None = None,
           start: float | None = None, end: float | None = None) -> Iterator[Recorded]:
    """The messages to replay (streamed): of these topics and nodes, between ``start`` and ``end``
    seconds after the recording's first message."""
    first: int | None = None
    for msg in messages:
        if first is None:
            first = msg.publish_time
        offset = (msg.publish_time - first) / 1e9
        if end is not None and offset > end:
            return
        if (start is not None and offset < start) or not wanted(msg.key, msg.source, topics, nodes):
            continue
        yield msg


def replace_nodes(desc: Descriptor, replaced: Iterable[str]) -> Descriptor:
    """The dataflow with ``replaced`` nodes turned into ``dynamic`` ones: the runner does not start
    them, nobody waits for them at start, and their readers close only on their ``exited`` token
    (which the player declares when it is done)."""
    wanted = set(replaced)
    nodes = [dataclasses.replace(n, kind="dynamic", command=None) if n.id in wanted else n for n in desc.nodes]
    return dataclasses.replace(desc, nodes=nodes)


class Player:
    """Publishes the messages ``messages()`` yields (called again for each ``--loop`` round) on the
    keys ``key_of(recorded key, node/output)`` gives them; ``channels`` are the (key, source) pairs
    that will be played, so their publishers exist (and find their subscribers) before the first."""

    def __init__(self, session: zenoh.Session, messages: Callable[[], Iterable[Recorded]],
                 key_of: Callable[[str, str], str], channels: list[tuple[str, str]], rate: float = 1.0,
                 loop: bool = False, realtime: bool = False) -> None:
        if rate <= 0:
            raise ValueError("--rate must be above 0")
        self.session, self.messages, self.key_of = session, messages, key_of
        self.rate, self.loop, self.realtime = rate, loop, realtime
        self._stop = threading.Event()
        self.publishers: dict[str, Any] = {}
        for key, source in channels:
            self._publisher(key_of(key, source))
        self._encodings: dict[str, zenoh.Encoding] = {}

    def _publisher(self, key: str) -> Any:
        pub = self.publishers.get(key)
        if pub is None:
            pub = self.publishers[key] = self.session.declare_publisher(
                key, congestion_control=zenoh.CongestionControl.BLOCK)
        return pub

    def stop(self) -> None:
        self._stop.set()

    def wait_for_subscribers(self, timeout: float) -> bool:
        """Until every key has a matching subscriber (bounded); whether they all do."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(p.matching_status.matching for p in self.publishers.values()):
                return True
            time.sleep(0.005)
        return False

    def play(self) -> PlayResult:
        result = PlayResult({})
        _precise_sleep()
        restore = self._realtime(result) if self.realtime else None
        try:
            while True:
                played = self._play_once(result)
                if not self.loop or self._stop.is_set() or not played:
                    break
        finally:
            if restore is not None:
                os.sched_setscheduler(0, *restore)
        result.interrupted = self._stop.is_set()
        return result

    @staticmethod
    def _realtime(result: PlayResult) -> tuple[int, os.sched_param] | None:
        """SCHED_FIFO for this thread while it plays; returns what to restore (None: not had)."""
        try:
            before = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        except (AttributeError, OSError) as exc:
            result.realtime = f"normal (SCHED_FIFO refused: {getattr(exc, 'strerror', None) or exc})"
            return None
        result.realtime = "SCHED_FIFO"
        return before

    def _play_once(self, result: PlayResult) -> int:
        """One pass over the messages; returns how many were sent."""
        clock = time.perf_counter_ns
        first_ts: int | None = None
        t0 = last_target = 0
        errors, puts, sent = result.errors_ns, result.put_ns, result.sent
        encodings = self._encodings
        count = 0
        prev = clock()
        for msg in self.messages():
            got = clock()
            result.read_ns += got - prev
            if self._stop.is_set():
                return count
            if first_ts is None:
                first_ts, t0 = msg.publish_time, clock()
                last_target = t0
            target = max(last_target, t0 + int((msg.publish_time - first_ts) / self.rate))
            last_target = target
            left = target - clock()
            while left > SPIN_NS:
                if self._stop.wait((left - SPIN_NS) / 1e9):
                    return count
                left = target - clock()
            while clock() < target:
                pass
            key = self.key_of(msg.key, msg.source)
            enc = encodings.get(msg.encoding)
            if enc is None:
                enc = encodings[msg.encoding] = zenoh.Encoding(msg.encoding)
            pub = self._publisher(key)
            before = clock()
            if msg.attachment is None:
                pub.put(msg.payload, encoding=enc)
            else:
                pub.put(msg.payload, encoding=enc, attachment=msg.attachment)
            prev = done = clock()
            errors.append(done - target)  # when put() returned: the message is out
            puts.append(done - before)
            sent[key] = sent.get(key, 0) + 1
            count += 1
        return count


def _precise_sleep() -> None:
    """Linux wakes a sleeping thread up to its timer slack (50 µs by default) late, to batch
    wake-ups; the player wants its own wake-ups on time (PR_SET_TIMERSLACK, 1 ns). Best effort."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


class StandIn:
    """The player's part in a dataflow's protocol for the nodes it replaces (see module docstring)."""

    def __init__(self, session: zenoh.Session, desc: Descriptor, dataflow: str, replaced: list[str]) -> None:
        self.session, self.desc, self.dataflow, self.replaced = session, desc, dataflow, replaced
        self.alive: set[str] = set()
        self._cond = threading.Condition()
        root = keys.live_root(desc.prefix, dataflow) + "/node/"
        self._root = root
        self._sub = session.liveliness().declare_subscriber(
            root + "*", zenoh.handlers.Callback(self._on_live, indirect=False), history=True)
        self._tokens = [session.liveliness().declare_token(keys.node_token(desc.prefix, dataflow, n))
                        for n in replaced]

    def _on_live(self, sample: zenoh.Sample) -> None:
        name = str(sample.key_expr)[len(self._root):]
        with self._cond:
            (self.alive.add if sample.kind == zenoh.SampleKind.PUT else self.alive.discard)(name)
            self._cond.notify_all()

    def wait_for_readers(self, original: Descriptor, timeout: float) -> list[str]:
        """Until every node reading a replaced node's output is ready; returns those still missing."""
        from dora_zenoh.wire.contract import readers_by_output

        wanted = {r for n in self.replaced for rs in readers_by_output(original, n).values() for r in rs
                  if r not in self.replaced}
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = sorted(wanted - self.alive)
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self._cond.wait(left)

    def finish(self, sent: dict[str, int], key_of_output: Callable[[str, str], str],
               ended: Callable[[str, dict[str, int]], None]) -> None:
        """Each replaced node has "sent" what was played: ``ended(node, counts per output)``
        (the runner signs its end-of-stream notice and declares its ``exited`` fact)."""
        for token in self._tokens:
            token.undeclare()
        self._tokens = []
        for node in self.replaced:
            ended(node, {o: sent.get(key_of_output(node, o), 0) for o in self.desc.node(node).outputs})
