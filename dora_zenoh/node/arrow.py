"""``event["value"]`` with pyarrow installed: the received payload as a genuine ``pyarrow.Array``.

dora-rs hands nodes real arrays, and real nodes depend on it: ``isinstance(value,
pa.StructArray)``, ``pa.concat_arrays([...])`` and ``pyarrow.compute`` reject anything
else (a stand-in object made one node send a whole struct where it meant one field).
So the array is built when the event is, but over the received buffer: the payload is
copied out of Zenoh once (``ZBytes.to_bytes``; ZBytes exposes no buffer), and the
array's data buffer is that ``bytes`` object itself (``pa.py_buffer``, no copy). For
raw bytes that costs ~1 µs per message on a warm CPU (see docs/coming-from-dora.md);
an Arrow IPC payload is decoded the same way, its buffers pointing into the bytes, and a
fixed-width array shaped like one received before is rebuilt from where its buffers lay then
(``_learn_layout``): on a cold CPU, at a few messages per second, the IPC reader was the
largest part of a relay's receive path.

A node that forwards the value it just received (``send_output("out", event["value"])``)
still sends Zenoh's own buffer: the node remembers the last array built and its sample.
"""
from __future__ import annotations

import threading
from typing import Any

from dora_zenoh.wire import codec as wire

_ENC_BYTES = wire.ENC_BYTES
_ENC_ARROW = wire.ENC_ARROW
_pa: Any = None
_u8: Any = None
_from_buffers: Any = None
_py_buffer: Any = None
_read_message: Any = None
_read_batch: Any = None
_read_schema: Any = None
# The schemas of the Arrow streams received so far, by their schema message's bytes: a sender
# sends the same schema with every message, and parsing it was half the decoding time.
_schemas: dict[bytes, Any] = {}
_MAX_SCHEMAS = 64
# Where the buffers of a fixed-width column lie in a stream, by the stream's bytes up to the
# batch's body and its length (see _learn_layout): (type, length, buffer spans, prefix length,
# stream length, prefix, the data buffer's span when it is the only buffer, else None).
_layouts: dict[tuple[bytes, int], tuple] = {}
_recent: tuple | None = None  # the layout recipe() found last
_is_primitive: Any = None
_MAX_SCHEMA_BYTES = 1 << 16  # a larger schema message (much custom metadata) is parsed every time
_CONTINUATION = b"\xff\xff\xff\xff"


def _load() -> Any:
    """Import pyarrow on the first value (~170 ms: a node that never reads values never pays it)."""
    global _pa, _u8, _from_buffers, _py_buffer, _read_message, _read_batch, _read_schema, _is_primitive
    pa = wire.pyarrow()
    if pa is None:
        raise ImportError("event[\"value\"] needs pyarrow, which is installed but fails to import: "
                          "run `python -c 'import pyarrow'` to see why, or uninstall it to get bytes")
    _u8, _from_buffers, _py_buffer = pa.uint8(), pa.Array.from_buffers, pa.py_buffer
    _read_message, _read_batch, _read_schema = pa.ipc.read_message, pa.ipc.read_record_batch, pa.ipc.read_schema
    _is_primitive = pa.types.is_primitive
    _pa = pa  # last: another thread takes a set _pa to mean that everything is set
    return pa


_preloading: threading.Thread | None = None


def preload() -> None:
    """Start importing pyarrow (~170 ms here, seconds on a loaded machine) in a background
    thread, while the node sets up its Zenoh session; :func:`wait_preloaded` before the node
    says it is ready. A node whose first messages came during that import fell behind its
    inputs (and dropped the oldest); dora-rs's nodes pay the same import with ``import dora``."""
    global _preloading
    if _pa is None and _preloading is None and wire.has_pyarrow():
        _preloading = threading.Thread(target=_quiet_load, name="dora-zenoh-pyarrow-import", daemon=True)
        _preloading.start()


def wait_preloaded() -> None:
    """Return once :func:`preload`'s import is done (at once if none was started)."""
    if _preloading is not None:
        _preloading.join()


def _quiet_load() -> None:
    try:
        _load()
    except ImportError:
        pass  # the first value says why, in the node's own thread


def decode(raw: bytes, encoding: Any) -> Any:
    """The pyarrow array of a payload (raises pyarrow's error for an invalid Arrow stream)."""
    if _pa is None:
        _load()
    if encoding == _ENC_BYTES or not wire.is_arrow_stream(encoding):
        return _from_buffers(_u8, len(raw), [None, _py_buffer(raw)])
    column = _known_schema_column(raw)
    if column is not None:
        return wire.checked(_pa, column)
    return wire.read_arrow(_pa, raw)


RAW = ("raw",)  # a recipe (see ``recipe``): the payload is raw bytes, a UInt8Array over it


def recipe(raw: bytes, encoding: Any) -> Any:
    """How to build a payload's array later, when it surely decodes (raw bytes, or a fixed-width
    array of a shape seen before: any bytes are valid then), or None: decode it now, so that a
    payload that does not decode is dropped before the node sees it. Lets an event build its
    value only when the node reads it (:func:`build`): a node that never looks at a value (one
    that counts, or filters on ``event["id"]``) pays no pyarrow at all, which is most of a
    message's cost on a cold CPU. The shape of the last message is tried first: a few
    bytecodes where parsing the stream's framing took sixty."""
    global _recent
    if encoding == _ENC_BYTES:
        return RAW
    if encoding != _ENC_ARROW:  # text, another sender's Arrow with a schema suffix, anything else
        return None
    recent = _recent
    if recent is not None and len(raw) == recent[4] and raw[:recent[3]] == recent[5]:
        return recent
    if raw[:4] != _CONTINUATION or len(raw) < 16:
        return None
    end = 8 + int.from_bytes(raw[4:8], "little")
    batch = end + 8 + int.from_bytes(raw[end + 4:end + 8], "little")
    layout = _layouts.get((raw[:batch], len(raw)))
    if layout is not None:
        _recent = layout
    return layout


def build(raw: bytes, how: Any) -> Any:
    """The array that :func:`recipe` promised."""
    if _pa is None:
        _load()
    if how is RAW:
        return _from_buffers(_u8, len(raw), [None, _py_buffer(raw)])
    data = how[6]
    if data is not None:  # no validity bitmap, one data buffer: the common case, kept short
        return _from_buffers(how[0], how[1], [None, _py_buffer(raw).slice(data[0], data[1])])
    whole = _py_buffer(raw)
    return _from_buffers(how[0], how[1], [None if span is None else whole.slice(*span) for span in how[2]])


def _known_schema_column(raw: bytes) -> Any:
    """The first column of an Arrow IPC stream's first record batch, decoded against a cached
    schema (see ``_schemas``), or rebuilt from a cached layout (see ``_layouts``); None when
    the stream is not the plain "schema, record batch" form this handles (dictionaries,
    another framing, anything that fails), which ``open_stream`` then decodes, or rejects,
    as always."""
    if raw[:4] != _CONTINUATION or len(raw) < 8:
        return None
    end = 8 + int.from_bytes(raw[4:8], "little")
    batch = end + 8 + int.from_bytes(raw[end + 4:end + 8], "little")  # where the batch's body starts
    layout = _layouts.get((raw[:batch], len(raw)))
    if layout is not None:
        return build(raw, layout)
    head = raw[:end]
    try:
        schema = _schemas.get(head)
        if schema is None:
            schema = _read_schema(_py_buffer(head))
            if len(head) <= _MAX_SCHEMA_BYTES:
                if len(_schemas) >= _MAX_SCHEMAS:
                    _schemas.clear()
                _schemas[head] = schema
        whole = _py_buffer(raw)
        message = _read_message(whole.slice(end))
        if message.type != "record batch":
            return None
        column = _read_batch(message, schema).column(0)
    except Exception:
        return None
    if batch <= _MAX_SCHEMA_BYTES:
        _learn_layout(raw[:batch], whole, column)
    return column


def _learn_layout(prefix: bytes, whole: Any, column: Any) -> None:
    """Remember where a fixed-width column's buffers lie in its stream, keyed by every byte
    before the batch's body (schema, batch metadata: lengths, null count, buffer offsets) and
    the stream's length. A sender of same-shaped arrays sends that prefix unchanged, and the
    next such message is rebuilt with one ``from_buffers`` over the received bytes instead of
    the IPC reader (less than half its cost on a cold CPU: docs/scale-and-logs.md). Any bytes
    are a valid body for a fixed-width type, so a known layout needs no further checking."""
    kind = column.type
    if not _is_primitive(kind) or column.offset != 0:
        return
    base, size = whole.address, whole.size
    spans: list[tuple[int, int] | None] = []
    for buf in column.buffers():
        if buf is None:
            spans.append(None)
            continue
        start = buf.address - base
        if start < 0 or start + buf.size > size:
            return
        spans.append((start, buf.size))
    if len(_layouts) >= _MAX_SCHEMAS:
        _layouts.clear()
    data = spans[1] if len(spans) == 2 and spans[0] is None else None
    _layouts[(prefix, size)] = (kind, len(column), spans, len(prefix), size, prefix, data)


def timer_value() -> Any:
    """A timer tick's value: an empty ``NullArray``, as dora-rs gives; one for every tick (an
    array is immutable, and building one costs ~60 µs on a cold CPU, every tick)."""
    global _nulls
    if _nulls is None:
        if _pa is None:
            _load()
        _nulls = _pa.nulls(0)
    return _nulls


_nulls: Any = None
