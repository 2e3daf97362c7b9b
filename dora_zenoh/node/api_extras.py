"""The rest of dora-rs 1.1's ``Node`` API: what a node needs besides ``next`` and ``send_output``.

Published dora nodes use these (``node_config()``, ``drain()``, ``await recv_async()``,
``log_info()``, ...), and a missing method fails them in the worst way: an asyncio node
hangs silently on the AttributeError inside its task. So :class:`Node` inherits them
all from :class:`NodeExtras`; what dora-zenoh cannot do (ROS 2, tensor pools, extension
stores) raises a NotImplementedError that names the gap. What differs from dora-rs, and
why, is in docs/coming-from-dora.md.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.errors import UndeclaredOutputError
from dora_zenoh.node.events import ERROR, TIMEOUT_ERROR, new_event

if TYPE_CHECKING:
    import uuid

    from dora_zenoh.node.events import Event
    from dora_zenoh.wire.contract import NodeConfig

LOG_LEVELS = ("error", "warn", "info", "debug", "trace")
# What dora-rs 1.1's dataflow_descriptor() fills in when the YAML leaves it out.
_TOP_DEFAULTS: dict[str, Any] = {"debug": {"enable_debug_inspection": False}, "deploy": None,
                                 "health_check_interval": None}
_NODE_DEFAULTS: dict[str, Any] = {"deploy": None, "description": None, "env": None, "max_restarts": 0,
                                  "name": None, "restart_policy": "never"}
_POLL = 0.05  # recv_async's waiting thread looks this often whether its task was cancelled


def strict_outputs_from_env() -> bool:
    """``DORA_ZENOH_STRICT_OUTPUTS=1``: sending on an undeclared output raises instead of warning."""
    return settings.STRICT_OUTPUTS.get()


def undeclared_output(who: str, output_id: str, declared: list[str], warned: set[str],
                      strict: bool | None) -> None:
    """``send_output`` on an output the YAML does not declare: dora-rs logs a warning and drops
    the message, and nodes rely on that; so do we (warning once per output), unless strict."""
    names = ", ".join(sorted(declared)) or "none"
    if strict if strict is not None else strict_outputs_from_env():
        raise UndeclaredOutputError(
            f"{who} has no output '{output_id}' (declared outputs: {names}); add it to `outputs:` in the "
            "dataflow YAML")
    if output_id not in warned:
        warned.add(output_id)
        warn(f"{who} has no output '{output_id}' (declared outputs: {names}): its messages are dropped, "
             f"as dora-rs does. Add it to `outputs:` in the dataflow YAML, or set {settings.STRICT_OUTPUTS.name}=1 "
             "to make this an error")


class NodeExtras:
    """Mixed into :class:`dora_zenoh.node.node.Node` (which provides ``_cfg``, ``_next``, ...)."""

    #: True: ``send_output`` on an undeclared output raises UndeclaredOutputError; False: it
    #: warns once and drops the message (dora-rs's behaviour); None: ``$DORA_ZENOH_STRICT_OUTPUTS``.
    strict_outputs: bool | None = None

    _cfg: NodeConfig
    _dataflow: str
    _outputs: dict
    _inputs: dict
    _legacy: bool | None
    _finished: bool
    _wake: Any
    node_id: str

    if TYPE_CHECKING:
        def _next(self, timeout: float | None) -> Event | None: ...
        def send_output(self, output_id: str, data: Any = b"", metadata: dict | None = None) -> None: ...

    def _undeclared_output(self, output_id: str) -> None:
        warned = self.__dict__.setdefault("_warned_outputs", set())
        undeclared_output(f"node '{self.node_id}'", output_id, list(self._outputs), warned, self.strict_outputs)

    # -- receiving without blocking ----------------------------------------------------------
    def try_recv(self) -> Event | None:
        """The next event if one is queued, else None (never blocks)."""
        if self._legacy is None:
            self._legacy = False
        return self._next(0)

    def is_empty(self) -> bool:
        """Whether no event is queued. (Looking takes the next event out and puts it back.)"""
        event = self.try_recv()
        if event is None:
            return True
        self._wake.put_back(event)
        return False

    def drain(self) -> list[Event]:
        """Every event queued now, oldest first (never blocks)."""
        events = []
        while (event := self.try_recv()) is not None:
            events.append(event)
        return events

    async def recv_async(self, timeout: float | None = None) -> Event | None:
        """``await node.recv_async()``: the next event, without blocking the event loop.

        As dora-rs: an ERROR event "Receiver timed out" after ``timeout`` seconds, None once
        the stream has ended. The wait runs in the loop's default executor; if the awaiting
        task is cancelled, an event that arrives meanwhile is put back for the next call.
        """
        if self._legacy is None:
            self._legacy = False
        cancelled = threading.Event()

        def wait() -> Any:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not cancelled.is_set():
                left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
                if left <= 0:
                    return new_event(ERROR, node=self, error=TIMEOUT_ERROR)
                event = self._next(left)
                if event is not None:
                    if cancelled.is_set():
                        self._wake.put_back(event)
                        return None
                    return event
                if self._finished:
                    return None
            return None

        import asyncio  # here: ~40 ms of start-up for every node, and only async nodes use it

        try:
            return await asyncio.get_running_loop().run_in_executor(None, wait)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    # -- information -------------------------------------------------------------------------
    def _yaml(self) -> dict | None:
        """The dataflow's YAML, parsed once (None for a node without one, e.g. ROS-like)."""
        if "_yaml_cache" not in self.__dict__:
            path = self._cfg.descriptor
            data = None
            if path:
                import yaml

                with open(path, encoding="utf-8") as f:
                    data = yaml.safe_load(f)
            self.__dict__["_yaml_cache"] = data if isinstance(data, dict) else None
        return self.__dict__["_yaml_cache"]

    def dataflow_descriptor(self) -> dict:
        """The dataflow's YAML, parsed, with dora-rs's defaults filled in for what it leaves out."""
        import copy

        data = copy.deepcopy(self._yaml()) or {"nodes": []}
        for key, value in _TOP_DEFAULTS.items():
            data.setdefault(key, copy.deepcopy(value))
        for node in data.get("nodes") or []:
            if isinstance(node, dict):
                for key, value in _NODE_DEFAULTS.items():
                    node.setdefault(key, value)
        return data

    def node_config(self) -> dict:
        """This node's ``inputs`` (as the YAML writes them) and ``outputs`` (dora's ``node_config()``)."""
        for node in (self._yaml() or {}).get("nodes") or []:
            if isinstance(node, dict) and node.get("id") == self.node_id:
                return {"inputs": dict(node.get("inputs") or {}), "outputs": list(node.get("outputs") or [])}
        inputs = {}
        for in_id, spec in self._cfg.inputs.items():
            if spec.timer_ns is not None:
                inputs[in_id] = f"dora/timer/millis/{spec.timer_ns // 1_000_000}"
            else:
                inputs[in_id] = f"{spec.source_node}/{spec.source_output}"
        return {"inputs": inputs, "outputs": list(self._cfg.outputs)}

    def dataflow_id(self) -> str:
        """A UUID for this run of the dataflow, as dora-rs gives (its name: ``dataflow_name()``).

        The runner hands every node the same one; a node without a runner derives it from the
        dataflow's name, so that nodes of one dataflow still agree."""
        given = self._cfg.dataflow_uuid
        if given:
            return given
        import uuid

        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dora-zenoh:{self._cfg.prefix}/{self._dataflow}"))

    def dataflow_name(self) -> str:
        """The running dataflow's name (its key chunk on the wire)."""
        return self._dataflow

    def restart_count(self) -> int:
        """How many times the runner restarted this node (0 on its first run)."""
        return self._cfg.restart_count

    def is_restart(self) -> bool:
        """Whether this process is a restart of the node (after an exit or a failure)."""
        return self.restart_count() > 0

    def timestamp(self) -> dt.datetime:
        """Now, as a UTC datetime: the clock ``event["metadata"]["timestamp"]`` is on."""
        return dt.datetime.now(dt.timezone.utc)

    # -- logging -------------------------------------------------------------------------------
    def log(self, level: str, message: str, target: str | None = None, fields: dict | None = None) -> None:
        """A log line on the node's stdout (which the runner files in its log)."""
        level = str(level).lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
        where = f" {target}:" if target else ""
        extra = "".join(f" {k}={v}" for k, v in (fields or {}).items())
        print(f"[{level.upper()}]{where} {message}{extra}", flush=True)

    def log_error(self, message: str) -> None:
        self.log("error", message)

    def log_warn(self, message: str) -> None:
        self.log("warn", message)

    def log_info(self, message: str) -> None:
        self.log("info", message)

    def log_debug(self, message: str) -> None:
        self.log("debug", message)

    def log_trace(self, message: str) -> None:
        self.log("trace", message)

    # -- sending ---------------------------------------------------------------------------------
    def send_output_raw(self, output_id: str, data_length: int, metadata: dict | None = None) -> RawSample:
        """A writable buffer of ``data_length`` bytes, sent on ``output_id`` by ``send()`` or at
        the end of a ``with`` block; it arrives as a uint8 array, as with dora-rs."""
        return RawSample(self, output_id, data_length, metadata)

    def send_service_request(self, output_id: str, data: Any, metadata: dict | None = None) -> str:
        """``send_output`` with a fresh ``request_id`` (a UUID v7) in the metadata; returns it."""
        request_id = str(_uuid7())
        self.send_output(output_id, data, {**(metadata or {}), "request_id": request_id})
        return request_id

    def send_service_response(self, output_id: str, data: Any, metadata: dict) -> None:
        """``send_output`` of a reply: ``metadata`` must carry the request's ``request_id``."""
        if not metadata or "request_id" not in metadata:
            raise ValueError("send_service_response: metadata must include the request's 'request_id' "
                             "(pass the request event's metadata)")
        self.send_output(output_id, data, metadata)

    # -- what dora-zenoh does not do --------------------------------------------------------------
    def merge_external_events(self, subscription: Any) -> None:
        raise NotImplementedError(
            "merge_external_events: dora-zenoh has no ROS 2 bridge, so there is no dora.Ros2Subscription "
            "to merge. Bridge ROS 2 with zenoh-plugin-ros2dds and subscribe to its keys from a ROS-like "
            "node (Node('id', inputs={...})) instead; see docs/coming-from-dora.md")

    def register_tensor_pool(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("register_tensor_pool", "tensor pools (shared GPU/CPU buffers held by the dora daemon)")

    def write_tensor_pool(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("write_tensor_pool", "tensor pools (shared GPU/CPU buffers held by the dora daemon)")

    def read_tensor_pool(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("read_tensor_pool", "tensor pools (shared GPU/CPU buffers held by the dora daemon)")

    def free_tensor_pool(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("free_tensor_pool", "tensor pools (shared GPU/CPU buffers held by the dora daemon)")

    def extension_store(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("extension_store", "the daemon's extension key-value store")

    def extension_load(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("extension_load", "the daemon's extension key-value store")

    def extension_drop(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("extension_drop", "the daemon's extension key-value store")

    def drain_dropped_extension_keys(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_here("drain_dropped_extension_keys", "the daemon's extension key-value store")


def _not_here(method: str, what: str) -> NotImplementedError:
    return NotImplementedError(f"Node.{method}: dora-zenoh has no dora daemon, so it has no {what}; "
                               "see docs/coming-from-dora.md")


class RawSample:
    """dora's ``send_output_raw`` handle: fill the buffer, then ``send()`` (or leave the ``with``).

    The buffer is a ``bytearray`` (writable through ``memoryview``/``numpy.frombuffer``); a
    ``with`` block yields it and sends it on a clean exit. Zenoh copies it once when sending.
    """

    def __init__(self, node: NodeExtras, output_id: str, length: int, metadata: dict | None) -> None:
        if length < 0:
            raise ValueError(f"send_output_raw: data_length must be >= 0, not {length}")
        self._node, self._output, self._metadata = node, output_id, metadata
        self._buffer = bytearray(length)
        self._sent = False

    def as_memoryview(self) -> memoryview:
        return memoryview(self._buffer)

    def send(self) -> None:
        if self._sent:
            raise RuntimeError("send_output_raw: this sample was sent already")
        self._sent = True
        self._node.send_output(self._output, bytes(self._buffer), self._metadata)

    def __len__(self) -> int:
        return len(self._buffer)

    def __enter__(self) -> bytearray:
        return self._buffer

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None and not self._sent:
            self.send()


def _uuid7() -> uuid.UUID:
    """A UUID v7 (RFC 9562: 48-bit Unix ms, then random), as dora-rs's request ids."""
    import uuid

    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((ms & (2**48 - 1)) << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62) | (
        rand & (2**62 - 1))
    return uuid.UUID(int=value)
