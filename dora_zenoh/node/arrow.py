"""``event["value"]`` with pyarrow installed: the received payload as a genuine ``pyarrow.Array``.

dora-rs hands nodes real arrays, and real nodes depend on it: ``isinstance(value,
pa.StructArray)``, ``pa.concat_arrays([...])`` and ``pyarrow.compute`` reject anything
else (a stand-in object made one node send a whole struct where it meant one field).
So the array is built when the event is, but over the received buffer: the payload is
copied out of Zenoh once (``ZBytes.to_bytes``; ZBytes exposes no buffer), and the
array's data buffer is that ``bytes`` object itself (``pa.py_buffer``, no copy). For
raw bytes that costs ~1 µs per message on a warm CPU (see docs/coming-from-dora.md);
an Arrow IPC payload is decoded the same way, its buffers pointing into the bytes.

A node that forwards the value it just received (``send_output("out", event["value"])``)
still sends Zenoh's own buffer: the node remembers the last array built and its sample.
"""
from __future__ import annotations

from typing import Any

from dora_zenoh.wire import codec as wire

_ENC_BYTES = wire.ENC_BYTES
_pa: Any = None
_u8: Any = None
_from_buffers: Any = None
_py_buffer: Any = None


def _load() -> Any:
    """Import pyarrow on the first value (~170 ms: a node that never reads values never pays it)."""
    global _pa, _u8, _from_buffers, _py_buffer
    pa = wire.pyarrow()
    if pa is None:
        raise ImportError("event[\"value\"] needs pyarrow, which is installed but fails to import: "
                          "run `python -c 'import pyarrow'` to see why, or uninstall it to get bytes")
    _pa, _u8, _from_buffers, _py_buffer = pa, pa.uint8(), pa.Array.from_buffers, pa.py_buffer
    return pa


def value_of(sample: Any) -> tuple[Any, bytes]:
    """The pyarrow array a received sample encodes, and the payload bytes it is built over."""
    if _pa is None:
        _load()
    raw = sample.payload.to_bytes()
    encoding = sample.encoding
    if encoding == _ENC_BYTES or not wire.is_arrow_stream(encoding):
        return _from_buffers(_u8, len(raw), [None, _py_buffer(raw)]), raw
    return _pa.ipc.open_stream(_py_buffer(raw)).read_next_batch().column(0), raw


def timer_value() -> Any:
    """A timer tick's value: an empty ``NullArray``, as dora-rs gives."""
    if _pa is None:
        _load()
    return _pa.nulls(0)

