"""Payload and attachment format: what a plain Zenoh subscriber sees.

Payload
    The bytes the node sent, untouched (Zenoh encoding ``application/octet-stream``).
    A ``str`` is sent as UTF-8 (``text/plain;charset=utf-8``). An Arrow array that is
    not plain bytes is sent as an Arrow IPC stream holding one record batch with one
    column named ``value`` (encoding ``application/vnd.apache.arrow.stream``), so it
    comes back as the same Arrow type, and any Arrow reader can decode it.
Attachment
    UTF-8 JSON: ``{"seq": N, "ts": T}`` plus ``"params": {...}`` when the sender
    gave metadata. ``seq`` counts messages per output from 0, ``ts`` is the send
    time in nanoseconds since the Unix epoch. JSON has no date type, so a ``datetime``
    parameter travels as an ISO-8601 UTC string (``"2024-01-02T01:04:05.123456+00:00"``,
    what any JSON reader can use as it is) and its key is listed in ``"dt": [...]``,
    which tells a dora-zenoh receiver to turn it back into a UTC ``datetime``.

pyarrow and numpy are optional: they are imported only when an Arrow or numpy
value is sent or when an event's value is read with pyarrow installed.
"""
from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import re
from typing import Any

import zenoh

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ENC_BYTES = zenoh.Encoding.APPLICATION_OCTET_STREAM
ENC_TEXT = zenoh.Encoding("text/plain;charset=utf-8")
ENC_ARROW = zenoh.Encoding(ARROW_STREAM)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

_pa: Any = None
_pa_checked = False
_pa_installed: bool | None = None


def has_pyarrow() -> bool:
    """Whether pyarrow is installed, without importing it (checked once).

    Importing pyarrow takes ~170 ms here: a node that only forwards or measures
    ``event["value"]`` never pays it (the value imports pyarrow on first real use).
    """
    global _pa_installed
    if _pa_installed is None:
        _pa_installed = _pa is not None or importlib.util.find_spec("pyarrow") is not None
    return _pa_installed


def pyarrow() -> Any:
    """The pyarrow module, or None when it is not installed (checked once)."""
    global _pa, _pa_checked
    if not _pa_checked:
        # Marked checked only once imported: another thread asking meanwhile (a node imports
        # pyarrow in the background, see dora_zenoh.node.arrow.preload) waits on Python's
        # import lock for the same module instead of getting None.
        try:
            import pyarrow as pa

            _pa = pa
        except ImportError:
            _pa = None
        _pa_checked = True
    return _pa


SEQ_PREFIX = b'{"seq":'          # how every attachment of a dora-zenoh sender starts
SEQ_NEXT = b'{"seq":%d,'         # ... with sequence number %d (a "ts" always follows)
SEQ_TS = b'{"seq":%d,"ts":%d}'  # the attachment without params (send_output formats it inline)


def attachment(seq: int, ts: int, params: dict | None) -> bytes:
    """The JSON attachment of one message (formatted by hand: this is the hot path).

    Raises TypeError or ValueError, naming send_output, for parameters that are not a dict or
    cannot be JSON (a circular one): a reader drops an attachment whose "params" is not an
    object as not dora-zenoh's, so sending it would lose the message."""
    if params:
        if not isinstance(params, dict):
            raise TypeError(f"send_output: metadata must be a dict of parameters, not a {type(params).__qualname__}")
        try:
            try:
                return b'{"seq":%d,"ts":%d,"params":%s}' % (seq, ts, json.dumps(params).encode())
            except TypeError:  # a datetime or a numpy scalar: the slow path, see _tagged_params
                plain, dated = _tagged_params(params)
                return b'{"seq":%d,"ts":%d,"params":%s,"dt":%s}' % (
                    seq, ts, json.dumps(plain, default=str).encode(), json.dumps(dated).encode())
        except ValueError as exc:  # a circular one, on either path
            raise ValueError(f"send_output: metadata cannot be sent as JSON ({exc})") from None
    return SEQ_TS % (seq, ts)


def _tagged_params(params: dict) -> tuple[dict, list[str]]:
    """Parameters JSON can carry, and the keys that hold datetimes (see the module docstring).

    A datetime becomes its UTC ISO-8601 string with microseconds (a naive one is local
    time, as Python's ``astimezone`` reads it). Any other value JSON cannot carry
    (a numpy scalar, a set, ...) becomes ``str(value)``: what dora-rs delivers for them.
    """
    plain: dict = {}
    dated: list[str] = []
    for key, value in params.items():
        if isinstance(value, _dt.datetime):
            plain[key] = value.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds")
            dated.append(key)
        else:
            plain[key] = value
    return plain, dated


def metadata_of(att: dict) -> dict:
    """The parameters of a parsed attachment as the sender gave them (datetimes restored)."""
    params = dict(att.get("params") or {})
    for key in att.get("dt") or ():
        value = params.get(key)
        if isinstance(value, str):
            try:
                params[key] = _dt.datetime.fromisoformat(value)
            except ValueError:
                pass
    return params


def utc_datetime(ns: int) -> _dt.datetime:
    """A time in ns since the epoch as dora's ``metadata["timestamp"]``: a UTC datetime (µs)."""
    return _EPOCH + _dt.timedelta(microseconds=ns // 1000)


def seq_in(raw: bytes) -> int | None:
    """The sequence number an attachment starts with; None for one a plain Zenoh
    publisher wrote (or none at all)."""
    if raw[:7] == SEQ_PREFIX:
        try:
            return int(raw[7:raw.find(b",", 7)])
        except ValueError:
            return None
    return None


MAX_NESTING = 64  # deeper JSON than this in an attachment or notice is refused, not parsed


def parse_attachment(raw: bytes | None) -> dict:
    """The attachment as a dict (empty for a message sent by a plain Zenoh client, and for
    one that :func:`check_attachment` refuses)."""
    value, problem = check_attachment(raw)
    return {} if problem else value


def check_attachment(raw: bytes | None) -> tuple[dict, str | None]:
    """``(attachment, None)``, or ``({}, what is wrong with it)``.

    Any Zenoh session on the network can put anything on a key a node reads: the
    attachment is checked before a node trusts its shape (``params`` a JSON object,
    ``seq`` and ``ts`` integers) and never parsed past ``MAX_NESTING`` levels (a deeply
    nested one would raise RecursionError inside the node).
    """
    if not raw:
        return {}, None
    value, problem = load_json(raw)
    if problem:
        return {}, f"attachment {problem}"
    if not isinstance(value, dict):
        return {}, f"attachment is a JSON {type(value).__name__}, not an object"
    params = value.get("params")
    if params is not None and not isinstance(params, dict):
        return {}, f"attachment's \"params\" is a {type(params).__name__}, not a JSON object"
    for name in ("seq", "ts"):
        if name in value and (value[name].__class__ is not int):
            return {}, f"attachment's \"{name}\" is not an integer"
    if "ts" in value and not 0 <= value["ts"] <= MAX_TS:  # metadata["timestamp"] is a datetime of it
        return {}, "attachment's \"ts\" is not a time between 1970 and 9999 (ns since the epoch)"
    dated = value.get("dt")
    if dated is not None and (dated.__class__ is not list or any(k.__class__ is not str for k in dated)):
        return {}, "attachment's \"dt\" is not a list of parameter names"
    return value, None


MAX_TS = (_dt.datetime(9999, 12, 31, tzinfo=_dt.timezone.utc) - _EPOCH) // _dt.timedelta(microseconds=1) * 1000


_QUOTED = re.compile(r"'[^']*'")
MAX_KINDS = 256  # kinds of refused message remembered per process (more are counted, not logged)


def problem_kind(problem: str) -> str:
    """What a refused message's problem says without the values it quotes: the key a warning is
    given once for. (A forger varying one value, a node name, got a warning per message: 1,786
    lines from 2,000 notices on one key.)"""
    return _QUOTED.sub("'…'", problem.split(" (")[0])


def load_json(raw: bytes) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, why it is not acceptable JSON)``, nesting bounded."""
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and _too_deep(raw):
        return None, f"is nested more than {MAX_NESTING} levels deep"
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError) as exc:
        return None, f"is not valid JSON ({str(exc)[:80]})"


def _too_deep(raw: bytes) -> bool:
    """Whether JSON text nests more than ``MAX_NESTING`` levels (json.loads recurses once
    per level; this scan, done only when there are that many brackets at all, does not)."""
    depth = 0
    in_str = escaped = False
    for byte in raw:
        if in_str:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_str = False
        elif byte == 0x22:
            in_str = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_NESTING:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def sign(secret: str, body: bytes) -> bytes:
    """The attachment that proves a control notice comes from a process the runner started
    (they alone were given ``secret``): an HMAC-SHA256 of the notice, in hex."""
    import hashlib
    import hmac

    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


def signed_by(secret: str, body: bytes, signature: bytes | None) -> bool:
    """Whether ``signature`` is :func:`sign` of ``body`` with ``secret``."""
    import hmac

    return signature is not None and hmac.compare_digest(sign(secret, body), signature)


def check_eos(raw: bytes, node: str) -> tuple[dict, str | None]:
    """An end-of-stream notice of ``node`` (the node its key names): ``(notice, None)`` or
    ``({}, what is wrong)``. ``outputs`` must map output ids to counts (integers >= 0)."""
    notice, problem = load_json(raw)
    if problem:
        return {}, f"notice {problem}"
    if not isinstance(notice, dict):
        return {}, "notice is not a JSON object"
    if notice.get("node") != node:
        return {}, f"notice names node {notice.get('node')!r} on the key of node {node!r}"
    outputs = notice.get("outputs", {})
    if not isinstance(outputs, dict) or not all(
            isinstance(o, str) and c.__class__ is int and c >= 0 for o, c in outputs.items()):
        return {}, "notice's \"outputs\" is not a map of output ids to message counts (integers >= 0)"
    return notice, None


def encode(data: Any) -> tuple[Any, zenoh.Encoding | None]:
    """Turn what a node passes to ``send_output`` into a Zenoh payload and encoding.

    Returns ``(payload, None)`` for raw bytes so the publisher's default encoding
    applies without a per-message Encoding object.
    """
    cls = data.__class__
    if cls is bytes or cls is bytearray or cls is zenoh.ZBytes:
        return data, None
    if cls is memoryview:
        return data.tobytes(), None
    if cls is str:
        return data.encode(), ENC_TEXT
    module = cls.__module__ or ""
    if module.startswith("pyarrow"):
        return _encode_arrow(data)
    if module.startswith("numpy"):
        pa = pyarrow()
        if pa is None:
            return data.tobytes(), None
        return _encode_arrow(pa.array(data.ravel()) if data.ndim != 1 else pa.array(data))
    if data is None:
        return b"", None
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), None
    if isinstance(data, (list, tuple)) and pyarrow() is not None:
        return _encode_arrow(pyarrow().array(data))
    raise TypeError(
        f"send_output: cannot send a {cls.__qualname__}; send bytes, bytearray, memoryview, str, "
        "a numpy array or a pyarrow array"
    )


# The IPC stream of a fixed-width array without nulls, by (type, length): the bytes before its
# data (schema, batch metadata), the bytes after it (padding, end of stream), and the data's
# size. The same for every such array, so the writer runs once per shape (see _learn_frame).
_frames: dict[tuple[Any, int], tuple[bytes, bytes, int]] = {}
_MAX_FRAMES = 64


def _encode_arrow(array: Any) -> tuple[Any, zenoh.Encoding | None]:
    pa = pyarrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not isinstance(array, pa.Array):
        raise TypeError(f"send_output: cannot send a {type(array).__qualname__}")
    key = (array.type, len(array))
    frame = _frames.get(key)
    if frame is not None and array.offset == 0:
        buffers = array.buffers()
        if buffers[0] is None:  # no validity bitmap, so no nulls
            before, after, size = frame
            return b"".join((before, memoryview(buffers[1])[:size], after)), ENC_ARROW
    if array.type == pa.uint8() and array.null_count == 0:
        # Plain bytes: send the data buffer itself so plain subscribers see raw bytes.
        buf = array.buffers()[1]
        return buf[array.offset : array.offset + len(array)].to_pybytes(), None
    batch = pa.record_batch([array], names=["value"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue().to_pybytes()
    if frame is None:
        _learn_frame(pa, key, array, payload)
    return payload, ENC_ARROW


def _learn_frame(pa: Any, key: tuple[Any, int], array: Any, payload: bytes) -> None:
    """Remember the frame around a fixed-width array's data in the stream the writer made for
    it, if it is one (whole bytes per value, no nulls, not a slice): the next array of that
    type and length is sent as frame + its data buffer, which costs a sixth of the writer on
    a cold CPU (docs/scale-and-logs.md). Kept only when frame + data gives back exactly the
    writer's bytes."""
    kind = array.type
    if (not pa.types.is_primitive(kind) or kind.bit_width % 8 or array.offset != 0 or not len(array)
            or array.buffers()[0] is not None or payload[:4] != b"\xff\xff\xff\xff"):
        return
    end = 8 + int.from_bytes(payload[4:8], "little")
    body = end + 8 + int.from_bytes(payload[end + 4:end + 8], "little")
    size = len(array) * kind.bit_width // 8
    data = bytes(memoryview(array.buffers()[1])[:size])
    before, after = payload[:body], payload[body + size:]
    if before + data + after != payload:
        return
    if len(_frames) >= _MAX_FRAMES:
        _frames.clear()
    _frames[key] = (before, after, size)


def is_arrow_stream(encoding: zenoh.Encoding) -> bool:
    """Whether a payload is an Arrow IPC stream (also with a schema suffix from another sender).

    Raw bytes, the common case, are told apart by an object comparison (0.1 µs) before
    the encoding is formatted as text (0.3 µs).
    """
    return encoding != ENC_BYTES and str(encoding).startswith(ARROW_STREAM)


def to_arrow(raw: bytes, arrow_stream: bool) -> Any:
    """Build the Arrow value of a received payload, over the received buffer (no copy)."""
    pa = pyarrow()
    if pa is None:
        raise ImportError("event[\"value\"] needs pyarrow, which is installed but fails to import: "
                          "run `python -c 'import pyarrow'` to see why, or uninstall it to get bytes")
    if arrow_stream:
        return read_arrow(pa, raw)
    return pa.Array.from_buffers(pa.uint8(), len(raw), [None, pa.py_buffer(raw)])


def read_arrow(pa: Any, raw: bytes) -> Any:
    """The first column of an Arrow IPC stream from the network, checked (:func:`checked`)."""
    return checked(pa, pa.ipc.open_stream(pa.py_buffer(raw)).read_next_batch().column(0))


def checked(pa: Any, array: Any) -> Any:
    """``array``, once its buffers are known to hold what its type says (pyarrow.ArrowInvalid if not).

    pyarrow's IPC reader does not check a variable-size array's offsets: one forged offset
    (10**8 where 13 belongs) in a string array from a plain Zenoh session crashed every node
    that read the value, and `topic echo`, with SIGSEGV (a helper's run, 4 Dec). Fixed-width
    arrays need only the reader's own checks: any bytes are valid values."""
    if not pa.types.is_primitive(array.type):
        array.validate(full=True)
    return array


def from_arrow_to_bytes(raw: bytes, arrow_stream: bool) -> bytes:
    """Bytes for the 2022 API, which only knows bytes.

    A fixed-width numeric Arrow value without nulls gives its values' bytes (what a 2022
    sender would have packed); any other Arrow value gives the payload as it travelled,
    an Arrow IPC stream, rather than some internal buffer of it.
    """
    pa = pyarrow()
    if not arrow_stream or pa is None:
        return raw
    array = to_arrow(raw, True)
    kind = array.type
    if pa.types.is_primitive(kind) and not pa.types.is_boolean(kind) and array.null_count == 0:
        width = kind.bit_width // 8
        return array.buffers()[1][array.offset * width:(array.offset + len(array)) * width].to_pybytes()
    return raw
