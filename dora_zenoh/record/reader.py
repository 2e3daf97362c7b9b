"""Reading recordings back: every message as it was sent (payload, encoding, attachment), in order.

Reads with PyPI's ``mcap`` with CRC checks on; a file that is truncated or damaged is a
:class:`RecordError` naming the file and what is wrong, never a traceback. A split
recording is read as one: its parts in order.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dora_zenoh.record import mapping as m
from dora_zenoh.record.writer import RecordError


@dataclass
class Recorded:
    """One recorded message, enough to publish it again byte for byte."""

    key: str
    source: str          # node/output
    payload: bytes
    encoding: str
    attachment: bytes | None
    log_time: int
    publish_time: int
    sequence: int


@dataclass
class ChannelInfo:
    id: int
    topic: str
    encoding: str
    role: str
    key: str
    source: str
    schema: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def parts(path: Path) -> list[Path]:
    """The files of a recording: ``path`` itself, or its split parts ``stem_0.mcap``..."""
    path = Path(path)
    if path.is_file():
        return [path]
    found = []
    n = 0
    while (p := path.with_name(f"{path.stem}_{n}{path.suffix or '.mcap'}")).is_file():
        found.append(p)
        n += 1
    if not found:
        raise RecordError(f"no recording at {path} (nor split parts {path.stem}_0{path.suffix or '.mcap'}...)")
    return found


def _mcap_reader() -> Any:
    try:
        from mcap import reader
    except ImportError:
        raise RecordError("reading recordings needs the `mcap` package: pip install 'dora-zenoh[record]'") from None
    return reader


def _damaged(path: Path, exc: BaseException) -> RecordError:
    detail = str(exc) or type(exc).__name__
    return RecordError(f"recording {path} is truncated or damaged ({type(exc).__name__}: {detail}); "
                       "it was not closed properly (recorder killed, disk full) or was cut short in a copy: "
                       "record again, or recover what it holds with `mcap recover` (Go mcap CLI)")


def read_file(path: Path) -> Iterator[tuple[dict[int, ChannelInfo], Recorded]]:
    """Every data message of one file, streamed in file order (the order it was received in),
    CRCs checked chunk by chunk. A file without its footer (truncated) fails before the first
    message; damage further in fails where it is found."""
    reader_mod = _mcap_reader()
    _check_complete(path)
    channels: dict[int, ChannelInfo] = {}
    pending: dict[int, bytes] = {}
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, also when the consumer stops early)
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror}") from None
    try:
        records = reader_mod.NonSeekingReader(f, validate_crcs=True).iter_messages()
        while True:
            try:
                schema, channel, message = next(records)
            except StopIteration:
                return
            except Exception as exc:  # mcap raises several types (EndOfFile, InvalidMagic, CRC errors...)
                raise _damaged(path, exc) from None
            info = channels.get(channel.id)
            if info is None:
                meta = dict(channel.metadata)
                info = ChannelInfo(channel.id, channel.topic, channel.message_encoding,
                                   meta.get(m.CH_ROLE, "data"), meta.get(m.CH_KEY, channel.topic),
                                   meta.get(m.CH_SOURCE, ""), schema.name if schema else "", meta)
                channels[channel.id] = info
            if info.role == "attachment":
                pending[int(info.metadata.get(m.CH_DATA_TOPIC, -1))] = message.data
                continue
            if info.role != "data":
                continue
            att = pending.pop(channel.id, None)
            if att is None:
                att = m.canonical_attachment(message.sequence, message.publish_time)
            yield channels, Recorded(info.key, info.source, bytes(message.data), info.encoding, att or None,
                                     message.log_time, message.publish_time, message.sequence)
    finally:
        f.close()


def check(path: Path) -> list[tuple[str, str]]:
    """Fail (RecordError) unless every part of the recording is complete (footer, summary);
    returns its data channels as (key, source) pairs, read from the summaries."""
    reader_mod = _mcap_reader()
    found: list[tuple[str, str]] = []
    for part in parts(path):
        _check_complete(part)
        try:
            with open(part, "rb") as f:
                summary = reader_mod.make_reader(f, validate_crcs=True).get_summary()
        except Exception as exc:
            raise _damaged(part, exc) from None
        if summary is None:
            raise _damaged(part, ValueError("no summary section"))
        for ch in summary.channels.values():
            meta = dict(ch.metadata)
            pair = (meta.get(m.CH_KEY, ch.topic), meta.get(m.CH_SOURCE, ""))
            if meta.get(m.CH_ROLE, "data") == "data" and pair not in found:
                found.append(pair)
    return found


def _check_complete(path: Path) -> None:
    """A file whose writer never finished has no footer: the stream reader may stop early."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - 8))
        tail = f.read(8)
    if tail != b"\x89MCAP0\r\n":
        raise _damaged(path, ValueError("no MCAP footer magic at the end of the file"))


def read(path: Path) -> Iterator[Recorded]:
    """Every data message of a recording (all its parts), in the order it was received."""
    for part in parts(path):
        for _, msg in read_file(part):
            yield msg


def metadata(path: Path) -> dict[str, dict[str, str]]:
    """The file's metadata records by name (recording info, drops)."""
    reader_mod = _mcap_reader()
    out: dict[str, dict[str, str]] = {}
    try:
        with open(path, "rb") as f:
            for rec in reader_mod.make_reader(f, validate_crcs=True).iter_metadata():
                out[rec.name] = dict(rec.metadata)
    except Exception as exc:
        raise _damaged(path, exc) from None
    return out


def drops(path: Path) -> dict[str, int]:
    """Messages the recorder dropped per topic (its buffer was full), from a file's metadata."""
    raw = metadata(path).get(m.META_DROPS, {})
    return {k: int(v) for k, v in raw.items()}


def sent(path: Path) -> dict[str, int]:
    """Messages each sender said it sent (its end-of-stream notice), from a file's metadata."""
    raw = metadata(path).get(m.META_SENT, {})
    return {k: int(v) for k, v in raw.items()}


def params_of(msg: Recorded) -> dict:
    """The metadata (``params``) the sender gave this message."""
    try:
        value = json.loads(msg.attachment or b"{}")
    except ValueError:
        return {}
    return value.get("params", {}) if isinstance(value, dict) else {}
