"""The event a node receives: one object for both generations of dora's Python API.

* dora >= 0.3 scripts read it as a mapping: ``event["type"]``, ``event["id"]``,
  ``event["value"]`` (a pyarrow array when pyarrow is installed, else ``bytes``),
  ``event["metadata"]``.
* 2022 scripts unpack it: ``input_id, value = node.next()`` gives the input id and
  the payload as ``bytes``.

The payload stays a Zenoh ``ZBytes`` until somebody reads it, so a node that only
forwards ``event["value"]`` or ignores it never copies it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dora_zenoh import wire
from dora_zenoh.arrowvalue import ArrowValue

INPUT = "INPUT"
INPUT_CLOSED = "INPUT_CLOSED"
STOP = "STOP"
ERROR = "ERROR"

_KEYS = ("type", "id", "kind", "value", "metadata")


class Event:
    """One event of a node's stream (see the module docstring for the two ways to read it)."""

    __slots__ = ("type", "id", "_sample", "_raw", "_value", "_meta", "error", "_node", "timestamp")

    def __init__(self, type: str, id: str | None = None, sample: Any = None, node: Any = None,
                 error: str | None = None, timestamp: int | None = None) -> None:
        self.type = type
        self.id = id
        self._sample = sample
        self._raw: bytes | None = None
        self._value: Any = None
        self._meta: dict | None = None
        self._node = node
        self.error = error
        self.timestamp = timestamp

    # -- payload -------------------------------------------------------------------
    def _arrow_stream(self) -> bool:
        return self._sample is not None and wire.is_arrow_stream(self._sample.encoding)

    @property
    def raw(self) -> bytes:
        """The payload bytes exactly as they travelled (copied out of Zenoh once)."""
        if self._raw is None:
            self._raw = self._sample.payload.to_bytes() if self._sample is not None else b""
        return self._raw

    @property
    def data(self) -> bytes:
        """The payload as ``bytes``, the 2022 API's value (an Arrow value's data buffer)."""
        if self._sample is None:
            return b""
        return wire.from_arrow_to_bytes(self.raw, self._arrow_stream())

    @property
    def value(self) -> Any:
        """dora's ``event["value"]``: a pyarrow array (lazily built, see
        :mod:`dora_zenoh.arrowvalue`) when pyarrow is installed, else ``bytes``."""
        if self._value is None:
            self._value = ArrowValue(self._sample) if wire.has_pyarrow() else self.raw
        return self._value

    @property
    def metadata(self) -> dict:
        """The sender's metadata parameters (dora's ``event["metadata"]``)."""
        if self._meta is None:
            meta: dict = {}
            if self._sample is not None and self._sample.attachment is not None:
                att = wire.parse_attachment(self._sample.attachment.to_bytes())
                meta = dict(att.get("params") or {})
                if "ts" in att:
                    self.timestamp = att["ts"]
            self._meta = meta
        return self._meta

    @property
    def attachment(self) -> dict:
        """The whole attachment: ``seq``, ``ts`` (ns since the epoch) and ``params``."""
        if self._sample is None or self._sample.attachment is None:
            return {}
        return wire.parse_attachment(self._sample.attachment.to_bytes())

    # -- the dora >= 0.3 mapping form ------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key == "type":
            return self.type
        if key == "id":
            return self.id
        if key == "value":
            return self.value if self.type == INPUT else None
        if key == "metadata":
            return self.metadata
        if key == "kind":
            return "dora"
        if key == "error" and self.type == ERROR:
            return self.error
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> tuple[str, ...]:
        return _KEYS + (("error",) if self.type == ERROR else ())

    def values(self) -> list[Any]:
        return [self[k] for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in self.keys()]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __len__(self) -> int:
        return len(self.keys())

    # -- the 2022 tuple form --------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        """``input_id, value = event``: the 2022 API. Switches the node to that API."""
        if self._node is not None:
            self._node._legacy = True
        yield self.id
        yield self.data if self.type == INPUT else None

    def __repr__(self) -> str:
        if self.type == INPUT:
            size = len(self._sample.payload) if self._sample is not None else 0
            return f"Event(type='INPUT', id={self.id!r}, value=<{size} bytes>, metadata={self.metadata!r})"
        if self.type == ERROR:
            return f"Event(type='ERROR', error={self.error!r})"
        return f"Event(type={self.type!r}, id={self.id!r})"
