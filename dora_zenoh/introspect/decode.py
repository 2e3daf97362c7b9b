"""Payloads made readable: one decoder for every tool that shows data to a person.

``topic echo``, ``bag cat`` and the zenoh-cli decoder all show the same message the
same way, so the rules live here: an Arrow IPC stream becomes Python values (its
Arrow type kept for the header), text becomes text, anything else is raw bytes and is
shown as a length plus a short hex/ASCII preview (never dumped whole, never a
``UnicodeDecodeError``). The attachment (``seq``, ``ts``, ``params``) is parsed too;
a message from a plain Zenoh publisher simply has none.

This module imports neither zenoh nor pyarrow at import time: encodings are passed in
as text, and pyarrow is only needed for Arrow payloads (without it they are shown as
bytes with their encoding named).
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from dora_zenoh.wire import codec as wire

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_CONTINUATION = b"\xff\xff\xff\xff"  # how an Arrow IPC stream message starts
PREVIEW_BYTES = 16       # bytes shown in a bytes summary
MAX_ITEMS = 32           # Arrow values shown before "... (N more)" in text form

Kind = Literal["arrow", "text", "bytes", "empty"]


@dataclass
class Decoded:
    """One message made readable; ``value`` is Python values (arrow), str (text) or bytes."""

    key: str
    kind: Kind
    value: Any
    size: int
    encoding: str = ""
    arrow_type: str | None = None
    length: int | None = None          # number of Arrow values
    seq: int | None = None
    ts: int | None = None              # send time, ns since the Unix epoch
    params: dict = field(default_factory=dict)
    error: str | None = None           # why an Arrow payload could not be decoded


def parse_attachment(raw: bytes | None) -> dict:
    """The JSON attachment as a dict; empty for none or one a foreign publisher wrote."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _is_text_encoding(encoding: str) -> bool:
    return encoding.startswith("text/") or encoding.startswith("application/json") or encoding in (
        "zenoh/string", "application/yaml")


def _printable(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def decode(payload: bytes | bytearray | memoryview, encoding: str = "", attachment: bytes | None = None,
           key: str = "") -> Decoded:
    """Decode one message; never raises on odd input (a broken payload is shown as bytes).

    An empty ``encoding`` means "unknown" (zenoh-cli hands a decoder the key and the bytes
    only): an Arrow IPC stream is then recognised by its first bytes, and printable UTF-8
    is shown as text.
    """
    raw = bytes(payload)
    meta = parse_attachment(attachment)
    seq = meta.get("seq") if isinstance(meta.get("seq"), int) else None
    ts = meta.get("ts") if isinstance(meta.get("ts"), int) else None
    params = meta.get("params")
    if not isinstance(params, dict):
        params = {}
    out = Decoded(key=key, kind="bytes", value=raw, size=len(raw), encoding=encoding, seq=seq, ts=ts,
                  params=params)
    if not encoding and raw[:4] == ARROW_CONTINUATION:  # encoding unknown (zenoh-cli): sniff Arrow
        sniffed = decode(raw, ARROW_STREAM, attachment, key)
        if sniffed.kind == "arrow":
            return sniffed
    if encoding.startswith(ARROW_STREAM):
        try:
            import pyarrow as pa
        except ImportError:
            out.error = "pyarrow is not installed: shown as bytes (pip install 'dora-zenoh[arrow]')"
            return out
        try:
            array = wire.read_arrow(pa, raw)
        except Exception as exc:  # noqa: BLE001 - a broken payload is shown, not fatal
            out.error = f"not a readable Arrow IPC stream ({exc})"
            return out
        out.kind = "arrow"
        out.arrow_type = str(array.type)
        out.length = len(array)
        out.value = array.to_pylist()
        return out
    if not raw:
        out.kind = "empty"
        out.value = b""
        return out
    if _is_text_encoding(encoding) or (not encoding and _printable(raw)):
        out.kind = "text"
        out.value = raw.decode("utf-8", errors="replace")
    return out


def bytes_summary(raw: bytes, preview: int = PREVIEW_BYTES) -> str:
    """``<5 bytes> 68 65 6c 6c 6f |hello|``: length, hex and printable ASCII of the first bytes."""
    head = raw[:preview]
    hexs = " ".join(f"{b:02x}" for b in head)
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in head)
    more = f" ... (+{len(raw) - preview} bytes)" if len(raw) > preview else ""
    return f"<{len(raw)} bytes> {hexs} |{text}|{more}"


def _jsonable(value: Any) -> Any:
    """Arrow's Python values made JSON-safe (bytes as base64, datetimes as ISO text, NaN as null)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _short_list(values: list, max_items: int) -> str:
    shown = ", ".join(repr(v) for v in values[:max_items])
    more = f", ... ({len(values) - max_items} more)" if len(values) > max_items else ""
    return f"[{shown}{more}]"


def value_text(d: Decoded, no_arrays: bool = False, max_items: int = MAX_ITEMS) -> str:
    """The value alone, as one line of text (``--no-arrays`` shows only type and length)."""
    if d.kind == "arrow":
        if no_arrays and (d.length or 0) > 1:
            return f"<{d.arrow_type}[{d.length}]>"
        return f"{d.arrow_type}[{d.length}] {_short_list(d.value, max_items)}"
    if d.kind == "text":
        return d.value
    if d.kind == "empty":
        return "<empty>"
    return bytes_summary(d.value)


def to_text(d: Decoded, no_arrays: bool = False, max_items: int = MAX_ITEMS) -> str:
    """A ``ros2 topic echo``-like block: key and metadata, then the value, then ``---``."""
    head = [f"key: {d.key}"] if d.key else []
    if d.seq is not None:
        head.append(f"seq: {d.seq}")
    if d.ts is not None:
        head.append(f"ts: {d.ts}")
    if d.params:
        head.append(f"params: {json.dumps(_jsonable(d.params), sort_keys=True)}")
    if d.error:
        head.append(f"note: {d.error}")
    head.append(f"value: {value_text(d, no_arrays, max_items)}")
    return "\n".join(head) + "\n---"


def to_json(d: Decoded, no_arrays: bool = False) -> dict:
    """One JSON object per message (for ``--format json``, one per line)."""
    out: dict[str, Any] = {"key": d.key, "kind": d.kind, "size": d.size, "encoding": d.encoding,
                           "seq": d.seq, "ts": d.ts, "params": _jsonable(d.params)}
    if d.kind == "arrow":
        out["type"] = d.arrow_type
        out["len"] = d.length
        if not no_arrays:
            out["value"] = _jsonable(d.value)
    elif d.kind == "text":
        out["value"] = d.value
    elif d.kind == "bytes":
        if not no_arrays:
            out["base64"] = base64.b64encode(d.value).decode()
        out["preview"] = bytes_summary(d.value)
    if d.error:
        out["error"] = d.error
    return out


def seq_of(raw: bytes | None) -> int | None:
    """The sequence number of a dora-zenoh attachment without parsing all of it (hz at 100k msg/s)."""
    if raw and raw[:7] == b'{"seq":':
        end = raw.find(b",", 7)
        try:
            return int(raw[7:end if end > 0 else len(raw) - 1])
        except ValueError:
            return None
    return None
