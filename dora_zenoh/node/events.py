"""The event a node receives: one object for both generations of dora's Python API.

* dora >= 0.3 scripts read it as a mapping: ``event["type"]``, ``event["id"]``,
  ``event["value"]`` (a pyarrow array when pyarrow is installed, else ``bytes``),
  ``event["metadata"]`` (with dora's ``"timestamp"``, a UTC ``datetime``). Its keys are
  dora-rs's: ``id kind metadata type value`` for an INPUT, ``id kind type`` for STOP and
  INPUT_CLOSED, ``error kind type`` for an ERROR.
* 2022 scripts unpack it: ``input_id, value = node.next()`` gives the input id and
  the payload as ``bytes``.

The metadata is parsed only when read, and so is the value when that is sure to decode
(see :func:`attach_value`); the 2022 form never builds an Arrow array.
"""
from __future__ import annotations

from collections.abc import Iterator
from time import time_ns
from typing import TYPE_CHECKING, Any

from dora_zenoh.node import arrow
from dora_zenoh.wire import codec as wire

_ENC_BYTES = wire.ENC_BYTES

if TYPE_CHECKING:
    import zenoh

INPUT = "INPUT"
INPUT_CLOSED = "INPUT_CLOSED"
STOP = "STOP"
ERROR = "ERROR"

# An event's keys, per type, in dora-rs 1.1's order of sorted(): what ``keys()`` lists.
_KEYS = {INPUT: ("id", "kind", "metadata", "type", "value"), ERROR: ("error", "kind", "type")}
_OTHER_KEYS = ("id", "kind", "type")
# dora-rs's STOP ids: the dataflow was stopped, or every input of the node closed.
STOP_MANUAL = "MANUAL"
STOP_ALL_INPUTS_CLOSED = "ALL_INPUTS_CLOSED"
TIMEOUT_ERROR = "Timeout event stream error: Receiver timed out"  # dora-rs's, first line


class Event(dict):
    """One event of a node's stream (see the module docstring for the two ways to read it).

    A ``dict``, as dora's own events are, so that ``event["type"]``, ``event["id"]`` and
    (with pyarrow installed) ``event["value"]`` are plain dict lookups: these run once
    per message on a just-woken thread, where every Python-level call counts. What is
    not stored yet (``metadata``, ``kind``, a value without pyarrow) is built on first
    use by ``__missing__``. Build events with :func:`new_event`.
    """

    # Slots for what every INPUT sets (a per-event __dict__ for them cost ~80 ns warm);
    # whoever makes an event sets all four.
    __slots__ = ("_sample", "_node", "_raw", "_how", "__dict__")
    _sample: zenoh.Sample | None  # the message (None: a timer tick, or not an INPUT)
    _node: Any  # the Node that made it, or None (not imported: node.node imports this module)
    _raw: bytes | None  # the payload's bytes, once copied out of Zenoh
    _how: Any  # an Arrow value not built yet: how to build it (see attach_value)
    # Rarely set, so class-level defaults: an event that never needs them allocates nothing.
    _meta: dict | None = None
    _data: bytes | None = None  # (the 2022 API) the value as bytes, decoded when the event was made
    error: str | None = None
    timestamp: int | None = None

    @property
    def type(self) -> str:
        return dict.__getitem__(self, "type")

    @property
    def id(self) -> str | None:
        return dict.__getitem__(self, "id")

    @id.setter
    def id(self, value: str | None) -> None:
        dict.__setitem__(self, "id", value)

    def __missing__(self, key: str) -> Any:
        if key == "value":  # an input's value built on first use (see attach_value), or bytes without pyarrow
            how = self._how
            if how is not None:
                value = arrow.build(self._raw, how)  # type: ignore[arg-type]  # set with _how
                node = self._node
                if node is not None:  # see attach_value
                    node._fwd_value, node._fwd_sample = value, self._sample
                    node._values_read = True
            else:
                value = self.raw
            self["value"] = value
            return value
        if key == "metadata":
            return self.metadata
        if key == "kind":
            return "dora"
        if key == "error" and dict.__getitem__(self, "type") == ERROR:
            return self.error
        raise KeyError(key)

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
        if self._data is not None:
            return self._data
        if self._sample is None:
            return b""
        return wire.from_arrow_to_bytes(self.raw, self._arrow_stream())

    @property
    def value(self) -> Any:
        """dora's ``event["value"]``: a pyarrow array (lazily built, see
        :mod:`dora_zenoh.node.arrow`) when pyarrow is installed, else ``bytes``."""
        return self["value"]

    @property
    def metadata(self) -> dict:
        """The sender's metadata parameters (dora's ``event["metadata"]``), plus dora's
        ``"timestamp"`` (the send time as a UTC datetime) unless the sender gave one."""
        if self._meta is None:
            meta: dict = {}
            if self._sample is not None and self._sample.attachment is not None:
                att = wire.parse_attachment(self._sample.attachment.to_bytes())
                meta = wire.metadata_of(att)
                if "ts" in att:
                    self.timestamp = att["ts"]
            if dict.__getitem__(self, "type") == INPUT and "timestamp" not in meta:
                # A plain Zenoh publisher sends no time: the time we read it is the best we have.
                meta["timestamp"] = wire.utc_datetime(self.timestamp if self.timestamp is not None
                                                      else time_ns())
            self._meta = meta
        return self._meta

    @property
    def attachment(self) -> dict:
        """The whole attachment: ``seq``, ``ts`` (ns since the epoch) and ``params``."""
        if self._sample is None or self._sample.attachment is None:
            return {}
        return wire.parse_attachment(self._sample.attachment.to_bytes())

    # -- the dora >= 0.3 mapping form ------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    # dora-rs's events return a tuple and lists here, not dict views: so do we.
    def keys(self) -> tuple[str, ...]:  # type: ignore[override]
        return _KEYS.get(dict.__getitem__(self, "type"), _OTHER_KEYS)

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[k] for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(k, self[k]) for k in self.keys()]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __len__(self) -> int:
        return len(self.keys())

    # Events compare and hash by identity (as before Event became a dict): two events are
    # never the same event, whatever they carry.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__  # type: ignore[assignment]

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


def attach_value(event: Event, sample: Any, node: Any) -> None:
    """Give an INPUT event its pyarrow value: decoded now when it might not decode (the node
    must never get a payload that fails in its hands: it is dropped as malformed instead),
    else built when first read (raw bytes; a fixed-width array shaped like one decoded before),
    or at once for a node that has read a value before.
    Raises pyarrow's error for an invalid Arrow stream."""
    raw = sample.payload.to_bytes()
    event._raw = raw
    encoding = sample.encoding
    # (raw bytes, the common case, need no recipe looked up)
    how = arrow.RAW if encoding == _ENC_BYTES else arrow.recipe(raw, encoding)
    if how is not None and (node is None or not node._values_read):
        event._how = how  # built when read (Event.__missing__)
        return
    # Now: it might not decode, or this node has read a value before and reads the next ones
    # too, as a rule (the dict lookup that misses costs ~0.4 us a message).
    event._how = None
    value = arrow.build(raw, how) if how is not None else arrow.decode(raw, encoding)
    event["value"] = value
    if node is not None:  # sending this very array on sends the sample's buffer (see Node.send_output)
        node._fwd_value, node._fwd_sample = value, sample


def decode_for_2022(event: Event) -> None:
    """The 2022 API's bytes of an Arrow value, decoded when the event is made: a payload that
    does not decode raises here, and the node drops it (counted) instead of raising ArrowInvalid
    inside the user's loop."""
    if event._arrow_stream():
        event._data = wire.from_arrow_to_bytes(event.raw, True)


def new_event(type: str, id: str | None = None, sample: Any = None, node: Any = None,
              error: str | None = None, timestamp: int | None = None) -> Event:
    """An event. An INPUT's value is a pyarrow array with pyarrow installed (built over the
    payload, see :mod:`dora_zenoh.node.arrow`; a timer tick's is an empty NullArray), else its
    bytes, copied out of Zenoh when first read. A node on the 2022 API gets no array."""
    event = Event(type=type, id=id)
    event._raw = event._how = None
    if type == INPUT:
        if wire.has_pyarrow() and (node is None or not node._legacy):
            if sample is None:
                dict.__setitem__(event, "value", arrow.timer_value())
            else:
                attach_value(event, sample, node)
    else:
        dict.__setitem__(event, "value", None)
    event._sample = sample
    event._node = node
    if sample is not None and node is not None and node._legacy:
        decode_for_2022(event)
    if error is not None:
        event.error = error
    if timestamp is not None:
        event.timestamp = timestamp
    return event
