"""Passive subscriptions and injected messages: how the tools touch a topic.

A watcher subscribes with a Zenoh *ring channel*: the Zenoh thread only pushes the
sample into a bounded ring (dropping the oldest when full) and never runs Python
code, so a slow terminal loses messages, never slows a publisher, even one with
congestion control BLOCK. Nothing is subscribed before a tool asks, so a dataflow
nobody watches pays nothing.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import zenoh

from dora_zenoh.introspect.decode import ARROW_STREAM

RING = 256  # samples held per key: a held sample pins its buffer (1 MiB messages: 256 MiB at most)


class Watch:
    """Ring-channel subscribers on several keys, read round-robin by one thread."""

    def __init__(self, session: zenoh.Session, key_exprs: list[str], ring: int = RING) -> None:
        self._subs = [session.declare_subscriber(k, zenoh.handlers.RingChannel(ring)) for k in key_exprs]

    def samples(self, until: float | None = None, idle_sleep: float = 0.0005) -> Iterator[Any]:
        """Samples as they arrive, until the monotonic time ``until`` (None: forever).

        Polls (a ring channel has no multi-key wait): 0.5 ms apart while data flows, backing
        off to 20 ms on a quiet topic so an idle watcher costs next to no CPU.
        """
        subs = self._subs
        nap = idle_sleep
        while until is None or time.monotonic() < until:
            got = False
            for sub in subs:  # one sample of each key per round: a busy key does not hide the others
                sample = sub.try_recv()
                if sample is not None:
                    got = True
                    yield sample
            if got:
                nap = idle_sleep
            else:
                time.sleep(nap)
                nap = min(nap * 2, 0.02)
            if until is not None and not got and time.monotonic() >= until:
                return

    def close(self) -> None:
        for sub in self._subs:
            try:
                sub.undeclare()
            except zenoh.ZError:
                pass
        self._subs = []


def attachment_bytes(sample: Any) -> bytes | None:
    att = sample.attachment
    return att.to_bytes() if att is not None else None


def parse_value(text: str, arrow_type: str | None = None) -> tuple[bytes, str]:
    """What ``topic pub`` sends for VALUE: ``(payload, encoding)``.

    With ``arrow_type`` (``float64``, ``int32``, ``string``, ``uint8``...), VALUE is a JSON
    scalar or list made into an Arrow array of that type. Without it: a JSON number, list
    or object becomes an Arrow array (as ``pa.array`` infers it), anything else is text.
    """
    from dora_zenoh.wire import codec

    value: Any
    if arrow_type is not None:
        pa = codec.pyarrow()
        if pa is None:
            raise ValueError("an Arrow-typed value needs pyarrow (pip install 'dora-zenoh[arrow]')")
        try:
            kind = pa.type_for_alias(arrow_type)
        except (ValueError, KeyError):
            raise ValueError(f"unknown Arrow type '{arrow_type}' (e.g. float64, int32, uint8, string, bool)") from None
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        try:
            array = pa.array(value if isinstance(value, list) else [value], type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise ValueError(f"'{text}' is not a {arrow_type} value: {exc}") from None
        payload, enc = codec.encode(array)
    else:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, (int, float, list, dict)) and not isinstance(value, bool) and codec.pyarrow():
            payload, enc = codec.encode(codec.pyarrow().array(value if isinstance(value, list) else [value]))
        else:
            payload, enc = codec.encode(text)
    return bytes(payload), (str(enc) if enc is not None else "application/octet-stream")


def injected_attachment(params: dict | None = None) -> bytes:
    """The attachment of an injected message: a send time, the params, and no ``seq``.

    Without a sequence number a node counts the message as one from a foreign publisher
    and does not mistake it for a gap (dropped messages) in the real publisher's sequence.
    """
    out: dict[str, Any] = {"ts": time.time_ns()}
    if params:
        out["params"] = params
    return json.dumps(out).encode()


def publisher(session: zenoh.Session, key: str, encoding: str) -> Any:
    """A publisher for ``topic pub``: the encoding nodes use to recognise Arrow and text."""
    enc = zenoh.Encoding(encoding) if encoding.startswith((ARROW_STREAM, "text/")) else \
        zenoh.Encoding.APPLICATION_OCTET_STREAM
    return session.declare_publisher(key, encoding=enc)
