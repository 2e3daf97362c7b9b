"""The live bridge: a dataflow's topics over the Foxglove WebSocket protocol (PyPI's ``foxglove-sdk``).

Same channels as a recording (see ``mapping``): one per key and encoding carrying the
payload as sent (Arrow channels with their Arrow schema, base64-encoded since the protocol
sends schemas as text: schema encoding ``arrow.ipc.schema+base64``), plus a JSON channel
``<key>/@json`` for Arrow data with an obvious JSON form, which Foxglove can plot. Like the
recorder it never slows the dataflow: Zenoh queues samples in a FIFO, a drain thread moves
them to a bounded queue (drops counted), and a thread of its own hands them to the server. Loopback by default.
"""
from __future__ import annotations

import base64
import threading
import time
from collections import deque
from typing import Any

import zenoh

from dora_zenoh.record import mapping as m
from dora_zenoh.record.writer import RecordError, arrow_schema_message, arrow_schema_name
from dora_zenoh.wire import zconfig

QUEUE_LIMIT = 10_000  # messages waiting for the server before new ones are dropped


def _foxglove() -> Any:
    try:
        import foxglove
    except ImportError:
        raise RecordError("the Foxglove bridge needs `foxglove-sdk`: pip install 'dora-zenoh[record]'") from None
    return foxglove


class FoxgloveBridge:
    """Serve ``prefix/dataflow/**`` (or ``prefix/**``) on ``ws://host:port`` until :meth:`close`."""

    def __init__(self, *, endpoint: str, prefix: str, dataflow: str | None, host: str = "127.0.0.1",
                 port: int = 8765) -> None:
        fg = _foxglove()
        self._fg = fg
        self.prefix, self.dataflow = prefix, dataflow
        self.context = fg.Context()
        try:
            self.server = fg.start_server(name=f"dora-zenoh {dataflow or prefix}", host=host, port=port,
                                          context=self.context)
        except Exception as exc:
            raise RecordError(f"cannot serve Foxglove on {host}:{port}: {exc} (is the port taken? try --port)") \
                from None
        self.host, self.port = host, self.server.port
        self._queue: deque[tuple[str, bytes, str, int]] = deque()
        self.drops: dict[str, int] = {}
        self.sent = 0
        self._channels: dict[tuple[str, str, bytes | None], Any] = {}
        self._json_channels: dict[str, Any] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="foxglove-bridge", daemon=True)
        self._thread.start()
        self.session = zenoh.open(zconfig.peer_config([endpoint], [zconfig.node_listen_endpoint(endpoint)]))
        expr = f"{prefix}/{dataflow}/**" if dataflow else f"{prefix}/**"
        # As in the recorder: Zenoh queues samples without waiting for Python's GIL, so a busy
        # bridge never stops Zenoh from reading the socket (which would hold the senders back).
        self._sub = self.session.declare_subscriber(expr, zenoh.handlers.FifoChannel(QUEUE_LIMIT))
        self._drain = threading.Thread(target=self._drain_loop, name="foxglove-drain", daemon=True)
        self._drain.start()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _drain_loop(self) -> None:
        while True:
            try:
                sample = self._sub.recv()
            except Exception:  # the session is closed
                return
            self._on_sample(sample)

    def _on_sample(self, sample: zenoh.Sample) -> None:
        key = str(sample.key_expr)
        if len(self._queue) >= QUEUE_LIMIT:
            self.drops[key] = self.drops.get(key, 0) + 1
            return
        self._queue.append((key, sample.payload.to_bytes(), str(sample.encoding), time.time_ns()))

    def _channel(self, key: str, encoding: str, payload: bytes) -> Any:
        fg = self._fg
        schema_msg = arrow_schema_message(payload) if encoding.startswith(m.ENC_ARROW) else None
        ident = (key, encoding, schema_msg)
        ch = self._channels.get(ident)
        if ch is None:
            # The protocol sends schemas as text: the Arrow schema travels base64-encoded.
            # Raw bytes and text have no schema: an empty one (foxglove-sdk 0.30 refuses None for any
            # encoding but JSON, and every such message was dropped)
            schema = fg.Schema(name=arrow_schema_name(schema_msg), encoding=m.SCHEMA_ARROW_B64,
                               data=base64.b64encode(schema_msg)) if schema_msg is not None else \
                fg.Schema(name=encoding.partition(";")[0], encoding="", data=b"")
            ch = fg.Channel(key, schema=schema, message_encoding=encoding, context=self.context)
            self._channels[ident] = ch
        return ch

    def _json_channel(self, key: str) -> Any:
        from dora_zenoh.record.jsonform import json_schema

        ch = self._json_channels.get(key)
        if ch is None:
            schema = self._fg.Schema(name="dora-zenoh.value", encoding=m.SCHEMA_JSON, data=json_schema())
            ch = self._fg.Channel(key + m.JSON_SUFFIX, schema=schema, message_encoding=m.ENC_JSON,
                                  context=self.context)
            self._json_channels[key] = ch
        return ch

    def _loop(self) -> None:
        from dora_zenoh.record.jsonform import json_form

        q = self._queue
        while not self._done.is_set() or q:
            try:
                key, payload, encoding, t = q.popleft()
            except IndexError:
                time.sleep(0.002)
                continue
            try:
                self._channel(key, encoding, payload).log(payload, log_time=t)
                if encoding.startswith(m.ENC_ARROW):
                    doc = json_form(payload)
                    if doc is not None:
                        self._json_channel(key).log(doc, log_time=t)
                self.sent += 1
            except Exception:  # one odd message must not end the bridge: count it as dropped
                self.drops[key] = self.drops.get(key, 0) + 1

    def close(self) -> None:
        self.session.close()
        self._drain.join(10)
        self._done.set()
        self._thread.join(10)
        self.server.stop()
