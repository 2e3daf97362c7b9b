"""``bag info`` figures: what a recording holds, and proof that it lost nothing.

Like ``ros2 bag info``: duration, size, compression, and per topic the count, rate,
encoding and schema; plus what only we can tell: each topic's ``seq`` gaps (messages the
sender numbered that are not in the file), the messages missing at the end (the sender's
end-of-stream notice says how many it sent), restarts (``seq`` back to 0: a restarted node)
and the recorder's own drops (from the file's metadata).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from dora_zenoh.record import mapping as m
from dora_zenoh.record import reader
from dora_zenoh.record.writer import RecordError


@dataclass
class TopicInfo:
    topic: str
    encoding: str
    schema: str = ""
    count: int = 0
    bytes: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    gaps: int = 0          # messages missing between two recorded ones
    restarts: int = 0      # seq went back (a restarted sender counts from 0 again)
    dropped: int = 0       # dropped by the recorder (buffer full)
    sent: int | None = None  # what the sender's end-of-stream notice says it sent (its last process)
    missing_end: int = 0   # sent - (last seq + 1): messages after the last recorded one
    first_time: int = 0
    last_time: int = 0

    @property
    def missing(self) -> int:
        """Messages its sender numbered that are not in the file. The recorder's own drops are
        numbered too, so they are among the gaps (or the missing end): adding them counted each
        twice (a helper's run: 46,852 "missing" for 23,426 dropped)."""
        return max(self.gaps + self.missing_end, self.dropped)

    @property
    def rate(self) -> float:
        span = (self.last_time - self.first_time) / 1e9
        return (self.count - 1) / span if span > 0 and self.count > 1 else 0.0


@dataclass
class BagInfo:
    files: list[str]
    size: int
    compression: str
    profile: str
    start: int
    end: int
    messages: int
    topics: list[TopicInfo] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return (self.end - self.start) / 1e9 if self.messages else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["duration_s"] = self.duration
        for t, d in zip(self.topics, out["topics"], strict=True):
            d["rate_hz"] = t.rate
        return out


def _compressions(path: Path) -> set[str]:
    from mcap.reader import make_reader

    try:
        with open(path, "rb") as f:
            summary = make_reader(f, validate_crcs=True).get_summary()
    except Exception as exc:
        raise RecordError(f"recording {path} is truncated or damaged ({type(exc).__name__}: {exc})") from None
    if summary is None:
        return set()
    return {c.compression or "none" for c in summary.chunk_indexes}


def bag_info(path: Path) -> BagInfo:
    reader.check(path)  # every part complete (footer, summary), else one clear error
    files = reader.parts(path)
    topics: dict[tuple[str, str], TopicInfo] = {}
    compression: set[str] = set()
    start = end = 0
    count = 0
    profile = ""
    drops: dict[str, int] = {}
    sent: dict[str, int] = {}
    for part in files:
        compression |= _compressions(part)
        for channels, msg in reader.read_file(part):
            ident = (msg.key, msg.encoding)
            t = topics.get(ident)
            if t is None:
                ch = next(c for c in channels.values() if c.role == "data" and c.key == msg.key
                          and c.encoding == msg.encoding)
                t = topics[ident] = TopicInfo(msg.key, msg.encoding, ch.schema, first_time=msg.log_time)
            seq = m.seq_ts(msg.attachment)[0]
            if seq is not None:
                if t.last_seq is None:
                    t.first_seq = seq
                elif seq > t.last_seq + 1:
                    t.gaps += seq - t.last_seq - 1
                elif seq <= t.last_seq:
                    t.restarts += 1
                t.last_seq = seq
            t.count += 1
            t.bytes += len(msg.payload)
            t.last_time = msg.log_time
            start = msg.log_time if not count else min(start, msg.log_time)
            end = max(end, msg.log_time)
            count += 1
        for key, n in reader.drops(part).items():
            drops[key] = max(drops.get(key, 0), n)  # each part holds the running total
        sent.update(reader.sent(part))
        profile = profile or _profile(part)
    for t in topics.values():
        t.dropped = drops.pop(t.topic, 0) if t.topic in drops else 0
        if t.topic in sent:
            t.sent = sent[t.topic]
            t.missing_end = max(0, t.sent - (t.last_seq + 1 if t.last_seq is not None else 0))
    listed = sorted(topics.values(), key=lambda t: t.topic)
    listed += [TopicInfo(k, "", dropped=n) for k, n in sorted(drops.items())]  # every message dropped
    return BagInfo([str(p) for p in files], sum(p.stat().st_size for p in files),
                   ",".join(sorted(compression)) or "none", profile, start, end, count, listed)


def _profile(path: Path) -> str:
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        return make_reader(f).get_header().profile
