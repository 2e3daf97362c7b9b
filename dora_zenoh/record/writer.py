"""Writing recordings: :class:`BagWriter` turns received messages into MCAP files (``mapping``).

Splits by size or duration (``rec.mcap`` becomes ``rec_0.mcap``, ``rec_1.mcap``...), compresses
chunks with zstd, lz4 or nothing, and writes the drop counts in each file's metadata when it
closes, so a file says itself whether it lost anything.
"""
from __future__ import annotations

import io
import struct
import time
from pathlib import Path
from typing import IO, Any

from dora_zenoh.errors import DoraZenohError
from dora_zenoh.record import mapping as m

COMPRESSIONS = ("zstd", "lz4", "none")


class RecordError(DoraZenohError):
    """A recording cannot be written or read (the message says which file and why)."""


def _mcap() -> Any:
    try:
        from mcap import writer
    except ImportError:
        raise RecordError("recording needs the `mcap` package: pip install 'dora-zenoh[record]'") from None
    return writer


def arrow_schema_message(payload: bytes) -> bytes | None:
    """The schema message an Arrow IPC stream starts with (its raw bytes), without pyarrow:
    ``0xFFFFFFFF``, the metadata length, then the flatbuffer (padded to 8)."""
    if len(payload) < 8 or payload[:4] != b"\xff\xff\xff\xff":
        return None
    length = int.from_bytes(payload[4:8], "little")
    if length <= 0 or 8 + length > len(payload):
        return None
    return payload[:8 + length]


def arrow_schema_name(schema_message: bytes) -> str:
    """A readable schema name, e.g. ``arrow:int64`` (the column's type), when pyarrow is here."""
    from dora_zenoh.wire import codec as wire

    pa = wire.pyarrow()
    if pa is None:
        return "arrow"
    try:
        schema = pa.ipc.read_schema(pa.py_buffer(schema_message))
    except Exception:
        return "arrow"
    if len(schema) == 1:
        return f"arrow:{schema.field(0).type}"
    return "arrow:" + ",".join(f"{f.name}:{f.type}" for f in schema)


class _MessageAdder:
    """``mcap.Writer.add_message`` without its per-message overhead: it builds a Message
    dataclass and writes it through seven small calls (about 3.5 µs of Python per message, the
    largest part of the recorder's cost for small messages). This does the same bookkeeping
    (statistics, the chunk's times and message index) and writes the record with one
    ``struct.pack``. It relies on mcap 1.x's private attributes, checked once: without them it
    uses the public ``add_message``. A test checks that both paths write the same bytes."""

    _HEAD = struct.Struct("<BQHIQQ")  # opcode, record length, channel id, sequence, log time, publish time

    def __init__(self, writer: Any) -> None:
        self._writer = writer
        self.add = writer.add_message
        try:
            from mcap.opcode import Opcode
            from mcap.records import MessageIndex

            chunk = writer._Writer__chunk_builder
            stats = writer._Writer__statistics
            limit = int(writer._Writer__chunk_size)
            finalize = writer._Writer__maybe_finalize_chunk
            ok = isinstance(chunk.record_writer._buffer, io.BytesIO) and isinstance(chunk.message_indices, dict) \
                and isinstance(chunk.num_messages, int) and isinstance(stats.message_count, int) \
                and stats.channel_message_counts is not None
        except (AttributeError, ImportError, TypeError, ValueError):
            return
        if ok:
            self._chunk, self._stats, self._limit, self._finalize = chunk, stats, limit, finalize
            self._opcode, self._index = int(Opcode.MESSAGE), MessageIndex
            self.add = self._add

    def _add(self, channel_id: int, log_time: int, data: bytes, publish_time: int, sequence: int) -> None:
        st = self._stats
        if st.message_count == 0 or log_time < st.message_start_time:
            st.message_start_time = log_time
        if log_time > st.message_end_time:
            st.message_end_time = log_time
        st.channel_message_counts[channel_id] += 1
        st.message_count += 1
        cb = self._chunk
        if cb.num_messages == 0 or log_time < cb.message_start_time:
            cb.message_start_time = log_time
        if log_time > cb.message_end_time:
            cb.message_end_time = log_time
        index = cb.message_indices.get(channel_id)
        if index is None:
            index = cb.message_indices[channel_id] = self._index(channel_id=channel_id, records=[])
        buf = cb.record_writer._buffer  # a new one after each chunk
        index.records.append((log_time, buf.tell()))
        cb.num_messages += 1
        buf.write(self._HEAD.pack(self._opcode, 22 + len(data), channel_id, sequence, log_time, publish_time))
        buf.write(data)
        if buf.tell() > self._limit:
            self._finalize()


class BagWriter:
    """One recording (one file, or a series when split). Not thread-safe: one writer thread."""

    def __init__(self, path: Path, *, prefix: str, dataflow: str | None, compression: str = "zstd",
                 split_size: int | None = None, split_duration: float | None = None,
                 foxglove_json: bool = False, chunk_size: int = 1 << 20, fast: bool = True) -> None:
        if compression not in COMPRESSIONS:
            raise RecordError(f"--compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")
        self.base = Path(path)
        self.prefix, self.dataflow = prefix, dataflow
        self.compression = compression
        self.split_size, self.split_duration = split_size, split_duration
        self.foxglove_json = foxglove_json
        self.chunk_size = chunk_size
        self.split = bool(split_size or split_duration)
        self.fast = fast  # messages through _MessageAdder (False: mcap's own add_message)
        self.paths: list[Path] = []
        self.counts: dict[str, int] = {}
        self.drops: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self._file: IO[bytes] | None = None
        self._writer: Any = None
        self._open_next()

    # -- files ---------------------------------------------------------------------------
    def _open_next(self) -> None:
        w = _mcap()
        path = self.base.with_name(f"{self.base.stem}_{len(self.paths)}{self.base.suffix or '.mcap'}") \
            if self.split else self.base
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "wb")  # noqa: SIM115 (closed in _close_current)
        except OSError as exc:
            raise RecordError(f"cannot write the recording {path}: {exc.strerror}") from None
        self.paths.append(path)
        kind = {"zstd": w.CompressionType.ZSTD, "lz4": w.CompressionType.LZ4,
                "none": w.CompressionType.NONE}[self.compression]
        self._writer = w.Writer(self._file, chunk_size=self.chunk_size, compression=kind)
        self._writer.start(profile=m.PROFILE, library="dora-zenoh")
        self._add = _MessageAdder(self._writer).add if self.fast else self._writer.add_message
        self._writer.add_metadata(m.META_RECORDING, {
            "format": m.FORMAT_VERSION, "prefix": self.prefix, "dataflow": self.dataflow or "",
            "part": str(len(self.paths) - 1), "started": str(time.time_ns())})
        self._channels: dict[tuple[str, str, bytes | None], int] = {}
        self._att_channels: dict[int, int] = {}
        self._json_channels: dict[str, int] = {}
        self._json_schema = 0
        self._arrow_schemas: dict[bytes, int] = {}
        self._first_time: int | None = None
        self._written = 0

    def _close_current(self) -> None:
        if self._writer is None:
            return
        self._writer.add_metadata(m.META_DROPS, {k: str(v) for k, v in self.drops.items()})
        self._writer.add_metadata(m.META_SENT, {k: str(v) for k, v in self.sent.items()})
        self._writer.finish()
        assert self._file is not None
        self._file.close()
        self._writer = self._file = None

    def _maybe_split(self, log_time: int) -> None:
        if self._first_time is None:
            self._first_time = log_time
            return
        if (self.split_size and self._written >= self.split_size) or \
                (self.split_duration and log_time - self._first_time >= self.split_duration * 1e9):
            self._close_current()
            self._open_next()
            self._first_time = log_time

    # -- channels ------------------------------------------------------------------------
    def _channel(self, key: str, encoding: str, schema_msg: bytes | None) -> int:
        ident = (key, encoding, schema_msg)
        cid = self._channels.get(ident)
        if cid is not None:
            return cid
        schema_id = 0
        if schema_msg is not None:
            schema_id = self._arrow_schemas.get(schema_msg, 0)
            if not schema_id:
                schema_id = self._writer.register_schema(arrow_schema_name(schema_msg), m.SCHEMA_ARROW, schema_msg)
                self._arrow_schemas[schema_msg] = schema_id
        flow, source = m.split_key(key, self.prefix, self.dataflow)
        cid = self._writer.register_channel(key, encoding, schema_id, {
            m.CH_ROLE: "data", m.CH_KEY: key, m.CH_PREFIX: self.prefix, m.CH_DATAFLOW: flow, m.CH_SOURCE: source})
        self._channels[ident] = cid
        return cid

    def _attachment_channel(self, data_cid: int, key: str) -> int:
        cid = self._att_channels.get(data_cid)
        if cid is None:
            cid = self._writer.register_channel(key + m.ATTACHMENT_SUFFIX, m.ENC_ATTACHMENT, 0, {
                m.CH_ROLE: "attachment", m.CH_KEY: key, m.CH_DATA_TOPIC: str(data_cid)})
            self._att_channels[data_cid] = cid
        return cid

    def _json_channel(self, key: str) -> int:
        from dora_zenoh.record.jsonform import json_schema

        cid = self._json_channels.get(key)
        if cid is None:
            if not self._json_schema:
                self._json_schema = self._writer.register_schema("dora-zenoh.value", m.SCHEMA_JSON, json_schema())
            cid = self._writer.register_channel(key + m.JSON_SUFFIX, m.ENC_JSON, self._json_schema,
                                                {m.CH_ROLE: "json", m.CH_KEY: key})
            self._json_channels[key] = cid
        return cid

    # -- messages ------------------------------------------------------------------------
    def write(self, key: str, payload: bytes, encoding: str, attachment: bytes | None, log_time: int,
              seq_hint: int = 0) -> int | None:
        """One received message; returns the sender's seq (None if it stamped none). ``seq_hint``
        is used as MCAP ``sequence`` when the sender stamped none (a plain Zenoh publisher): the
        recorder's own count for that key."""
        self._maybe_split(log_time)
        seq, ts, canonical = m.seq_ts(attachment)
        arrow = encoding.startswith(m.ENC_ARROW)
        schema_msg = arrow_schema_message(payload) if arrow else None
        cid = self._channel(key, encoding, schema_msg)
        add = self._add
        sequence = seq % m.SEQ_LIMIT if seq is not None and seq >= 0 else seq_hint % m.SEQ_LIMIT
        publish = ts if ts is not None and ts >= 0 else log_time
        if not canonical:
            add(self._attachment_channel(cid, key), log_time, attachment or b"", publish, sequence)
        add(cid, log_time, payload, publish, sequence)
        if arrow and self.foxglove_json:
            from dora_zenoh.record.jsonform import json_form

            doc = json_form(payload)
            if doc is not None:
                add(self._json_channel(key), log_time, doc, publish, sequence)
        self.counts[key] = self.counts.get(key, 0) + 1
        self._written += len(payload) + (len(attachment) if attachment and not canonical else 0) + 32
        return seq

    def close(self, drops: dict[str, int] | None = None, sent: dict[str, int] | None = None,
              metadata: dict[str, dict[str, str]] | None = None) -> list[Path]:
        """Finish the current file (summary, index, drop counts, what the senders said they sent,
        and any other ``metadata`` records); returns every file written."""
        if drops:
            self.drops = dict(drops)
        if sent:
            self.sent = dict(sent)
        if self._writer is not None:
            for name, record in (metadata or {}).items():
                self._writer.add_metadata(name, record)
        self._close_current()
        return list(self.paths)

