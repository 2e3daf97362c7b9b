"""The Node API: one process of a dataflow, talking Zenoh directly to its peers.

``Node()`` reads the configuration the runner put in its environment
(``DORA_ZENOH_NODE_CONFIG``), opens a Zenoh peer session, subscribes to its inputs'
keys, announces itself with a liveliness token, and waits until every node that
subscribes to its outputs has done the same (the start barrier), so a message sent
right after ``Node()`` is never lost. ``Node("id")`` outside a runner asks the
running dataflow for the configuration of its dynamic node ``id``.
"""
from __future__ import annotations

import atexit
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from time import time_ns
from typing import Any, TypeVar

import zenoh

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.errors import UndeclaredOutputError
from dora_zenoh.node import config as sources
from dora_zenoh.node.arrow import ArrowValue
from dora_zenoh.node.compat import caller_unpacks as _caller_unpacks
from dora_zenoh.node.events import ERROR, INPUT, INPUT_CLOSED, STOP, Event, new_event
from dora_zenoh.node.inbox import Inbox
from dora_zenoh.node.inputs import CLOSED, InputQueue, TimerThread
from dora_zenoh.tuning import sched
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys
from dora_zenoh.wire.contract import InputConfig, NodeConfig

CONFIG_ENV = settings.NODE_CONFIG.name
DATAFLOW_ENV = settings.DATAFLOW.name
PREFIX_ENV = settings.PREFIX.name
_STOP = object()  # wake token: the dataflow asks this node to stop
_SKIP = object()  # a token whose event the 2022 API does not show
_SAMPLE = zenoh.Sample
_SEQ_TS = wire.SEQ_TS
# Zenoh batches small messages unless a publisher is "express". Batching is the default
# (faster floods, same latency: docs/design/zenoh-runtime.md); DORA_ZENOH_EXPRESS=1 sends
# every message on its own.
_EXPRESS = settings.EXPRESS.get()
# A node that sent at least this many messages since it last waited flushes before it
# waits again (see Node._flush). One message alone is sent at once by Zenoh.
_BURST = 2
_NEVER = 1 << 63  # a yield gap no two sends are apart by
_sched_yield = sched.sched_yield
_T = TypeVar("_T")


class Node:
    """A dataflow node. See docs/reference/node-api.md for both API generations.

    Args:
        node_id: ignored when the runner started this process (dora does the same);
            otherwise the id of a ``path: dynamic`` node of a running dataflow to join.
        dataflow: which running dataflow to join when several have a node ``node_id``.
        endpoint: the Zenoh hub to connect to (default ``$DORA_ZENOH_ENDPOINT`` or
            ``tcp/127.0.0.1:7447``), for dynamic nodes.
        barrier_timeout: how long ``Node()`` waits for the nodes that subscribe to
            its outputs before it goes on anyway (with a warning).
        inputs, outputs: make this a ROS-like node with no YAML (see ``dora_zenoh.node.adhoc``):
            ``inputs={"image": "camera/image"}``, ``outputs=["cmd_vel"]``, on the keys of
            dataflow ``dataflow`` (default ``"default"``).
    """

    _yield_gap = _NEVER  # send_output's yield (see dora_zenoh.tuning.sched), set from the environment
    _yielded_at = 0

    def __init__(self, node_id: str | None = None, *, dataflow: str | None = None,
                 endpoint: str | None = None, barrier_timeout: float | None = None,
                 inputs: dict[str, Any] | None = None, outputs: list[str] | None = None) -> None:
        self._closed = True
        self._legacy: bool | None = None  # the 2022 API? decided on first read (see dora_zenoh.node.compat)
        joined = sources.join(node_id, dataflow, endpoint, inputs, outputs)  # see dora_zenoh.node.config
        self._cfg: NodeConfig = joined.cfg
        self._session, self._closed = joined.session, False
        self._setup(barrier_timeout if barrier_timeout is not None else joined.barrier_timeout)
        atexit.register(self.close)
        # This thread reads the events: its scheduler settings, see dora_zenoh.tuning.sched.
        sched.request_slice(_setting(sched.slice_from_env) or 0)
        self._yield_gap = _setting(sched.send_yield_gap_ns) or _NEVER
        spin_ns = _setting(sched.spin_ns_from_env)
        if spin_ns and self._outputs and sched.spin_can_help():  # a node that never sends never spins
            self._wake.spin = sched.Spin(spin_ns)

    # -- set-up ----------------------------------------------------------------------
    def _setup(self, barrier_timeout: float) -> None:
        cfg, session = self._cfg, self._session
        self.node_id: str = cfg.node
        self._dataflow: str = cfg.dataflow
        prefix = cfg.prefix
        self._stopped = False
        self._finished = False
        self._state = threading.Condition()
        self._alive: set[str] = set()
        self._exited: set[str] = set()

        # Outputs: one publisher each; [publisher, next sequence number].
        self._outputs: dict[str, list] = {}
        for out_id, key in cfg.outputs.items():
            pub = session.declare_publisher(key, encoding=wire.ENC_BYTES, express=_EXPRESS,
                                            congestion_control=zenoh.CongestionControl.BLOCK)
            self._outputs[out_id] = [pub, 0]
        self._sent_at_wait = 0
        self._flush_pub = session.declare_publisher(keys.flush_key(prefix, self._dataflow, self.node_id),
                                                    express=True)
        self._eos_pub = session.declare_publisher(
            keys.eos_key(prefix, self._dataflow, self.node_id),
            congestion_control=zenoh.CongestionControl.BLOCK)

        # Sources that may restart (or leave and rejoin): only their final exited token closes.
        self._restartable = {s.source_node for s in cfg.inputs.values() if s.restartable}
        sources = self._setup_inputs(cfg.inputs, prefix)
        self._flush_subs = []
        for source in sorted(sources):
            session.declare_subscriber(keys.eos_key(prefix, self._dataflow, source),
                                       zenoh.handlers.Callback(self._on_eos, indirect=False))
            # Never read: it is there so that the source's flushes reach us (see _flush).
            self._flush_subs.append(session.declare_subscriber(
                keys.flush_key(prefix, self._dataflow, source), zenoh.handlers.RingChannel(1)))
        if self._outputs:
            self._wake.before_wait = self._flush
        self._data_inputs = [q for q in self._inputs.values() if not q.timer_ns]
        self._stats_q = session.declare_queryable(keys.stats_key(prefix, self._dataflow, self.node_id),
                                                  zenoh.handlers.Callback(self._on_stats_query,
                                                                          indirect=False))
        self._live_root = keys.live_root(prefix, self._dataflow) + "/"
        session.liveliness().declare_subscriber(
            self._live_root + "**", zenoh.handlers.Callback(self._on_live, indirect=False), history=True)
        # Announced only now, after every input is subscribed: the token means "ready".
        self._token = session.liveliness().declare_token(keys.node_token(prefix, self._dataflow, self.node_id))
        if self._timers:
            self._timers.start()
        self._barrier(cfg.readers, barrier_timeout)

    def _setup_inputs(self, specs: dict[str, InputConfig], prefix: str) -> set[str]:
        """Queues for every input, the inbox our thread waits on, and the Zenoh subscribers.

        The primary input (the first non-timer ``drop_oldest`` one) is read from the
        inbox's ring channel by our thread; every other input has a bounded queue fed
        by a direct Zenoh callback (see :mod:`dora_zenoh.node.inbox`). Returns the source nodes.
        """
        cfg, session = self._cfg, self._session
        primary_id = next((i for i, sp in specs.items() if not sp.is_timer and not sp.blocks), None)
        self._inputs: dict[str, InputQueue] = {}
        for in_id, spec in specs.items():
            q = InputQueue(in_id, spec.queue_size, spec.blocks, None, spec.source_node, spec.source_output,
                           spec.stdout, spec.timer_ns)
            if cfg.fresh_start and not spec.restartable:
                q.first_seq = 0  # so messages dropped before the first one we read count too
            self._inputs[in_id] = q
        self._primary = self._inputs[primary_id] if primary_id else None
        # What every event of the primary input starts from (see _sample_event).
        self._template = {"type": INPUT, "id": primary_id}
        self._arrow = wire.has_pyarrow()
        ring_key = (specs[primary_id].key if primary_id else
                    keys.wake_key(prefix, self._dataflow, self.node_id, str(session.info.zid())))
        # Room for every marker that can be outstanding (one per queued token, see inbox).
        ring_size = sum(q.size + 1 for q in self._inputs.values()) + 8
        self._wake = Inbox(session, ring_key, ring_size, self._primary)
        timers: list[InputQueue] = []
        sources: set[str] = set()
        for in_id, q in self._inputs.items():
            q.wake = self._wake
            if q.timer_ns:
                timers.append(q)
                continue
            sources.add(q.source_node)
            if q is not self._primary:
                session.declare_subscriber(specs[in_id].key, zenoh.handlers.Callback(
                    self._input_callback(q, specs[in_id]), indirect=False))
        self._timers = TimerThread(timers) if timers else None
        return sources

    def _input_callback(self, q: InputQueue, spec: InputConfig) -> Any:
        """The Zenoh callback feeding input ``q``; a hook for the operator runtime, which must
        not block on messages it delivers to itself (see ``dora_zenoh.operators.runtime``)."""
        return q.put

    def _barrier(self, readers: dict[str, list[str]], timeout: float) -> None:
        """Return once every reader of our outputs is ready (or has already exited)."""
        waits_for = sorted({r for rs in readers.values() for r in rs})
        if not waits_for:
            return
        deadline = time.monotonic() + timeout
        with self._state:
            while True:
                missing = [n for n in waits_for if n not in self._alive and n not in self._exited]
                left = deadline - time.monotonic()
                if not missing or left <= 0 or self._stopped:
                    break
                self._state.wait(left)
        if missing and not self._stopped:
            warn(f"node '{self.node_id}': gave up waiting after {timeout:.0f} s for {', '.join(missing)} "
                  "to subscribe; messages sent before they start are lost")
            return
        # A reader's token can reach us (as history, through the hub) before its
        # subscription does; a message sent then is lost. So also wait until each output
        # that a live reader reads has a matching subscriber here.
        for out_id, out_readers in readers.items():
            out = self._outputs.get(out_id)  # None for the stdout output: the runner publishes it
            if out is None or not any(r in self._alive and r not in self._exited for r in out_readers):
                continue
            while not out[0].matching_status.matching and time.monotonic() < deadline and not self._stopped:
                time.sleep(0.002)

    def _flush(self) -> bool:
        """Before the node waits: if it sent a burst since it last waited, send it now.
        Returns whether it sent anything since then (see ``dora_zenoh.tuning.sched.Spin``).

        Zenoh batches small messages and may leave a burst's tail in the batch for
        milliseconds; an express message on our flush key (every reader of this node
        subscribes to it) moves the batch out at once (see docs/design/flush.md).
        """
        sent = 0
        for out in self._outputs.values():
            sent += out[1]
        new = sent - self._sent_at_wait
        if new >= _BURST and not _EXPRESS:
            self._flush_pub.put(b"")
        self._sent_at_wait = sent
        return new > 0

    # -- Zenoh callbacks (on Zenoh threads) ------------------------------------------------
    def _on_live(self, sample: zenoh.Sample) -> None:
        what = str(sample.key_expr)[len(self._live_root):]
        put = sample.kind == zenoh.SampleKind.PUT
        kind, _, name = what.partition("/")
        if kind == "node":
            with self._state:
                (self._alive.add if put else self._alive.discard)(name)
                self._state.notify_all()
            if not put and name not in self._restartable:  # gone: after its notice, or crashed
                self._close_from(name, include_stdout=False)
        elif kind == "exited" and put:
            with self._state:
                self._exited.add(name)
                self._state.notify_all()
            self._close_from(name, include_stdout=True)
        elif kind == "stop" and put:
            self._request_stop()
        elif kind == "runner" and not put and self._cfg.supervised:
            self._request_stop()  # our supervisor is gone: wind down

    def _on_eos(self, sample: zenoh.Sample) -> None:
        try:
            notice = json.loads(sample.payload.to_bytes())
        except ValueError:
            return
        node, outputs = notice.get("node"), notice.get("outputs", {})
        if node in self._restartable:  # its next process counts from 0 again: wait for exited/<node>
            return
        for q in self._data_inputs:
            if q.source_node == node and q.source_output in outputs:
                q.finish(outputs[q.source_output])

    def _on_stats_query(self, query: zenoh.Query) -> None:
        """``dora-zenoh list NAME``: messages sent per output, counted by their sequence numbers."""
        counts = {o: v[1] for o, v in self._outputs.items()}
        query.reply(keys.stats_key(self._cfg.prefix, self._dataflow, self.node_id), json.dumps(counts))

    def _close_from(self, node: str, include_stdout: bool) -> None:
        """``node`` is gone: close its inputs once what it sent before has landed.

        "Landed" means: its liveliness token is gone too (its link closes after its last
        message on that link) and nothing arrived for a moment. The runner's ``exited``
        notice comes over another link and can overtake the node's last messages.
        """
        def link_closed() -> bool:
            return node not in self._alive

        for q in self._data_inputs:
            if q.source_node == node and (include_stdout or not q.stdout):
                q.close_when_quiet(ready=link_closed)

    def _request_stop(self) -> None:
        with self._state:
            if self._stopped:
                return
            self._stopped = True
            self._state.notify_all()
        self._wake.put(_STOP)

    # -- receiving ---------------------------------------------------------------------
    def next(self, timeout: float | None = None) -> Event | None:
        """The next event, blocking (GIL released) up to ``timeout`` seconds.

        Returns None on timeout, and for ever once the dataflow stops or every input
        has closed (after a STOP event).
        """
        if self._legacy is None:
            self._legacy = _caller_unpacks(sys._getframe(1))
        return self._next(timeout)

    def _next(self, timeout: float | None) -> Event | None:
        get = self._wake.get
        while not self._finished:
            try:
                token = get(timeout)
            except queue.Empty:
                return None
            if token.__class__ is _SAMPLE:  # the primary input's message, straight from Zenoh
                return self._sample_event(token)
            event = self._token_event(token)
            if event is not _SKIP:
                return event
        return None

    def _sample_event(self, sample: zenoh.Sample) -> Event:
        """``new_event(INPUT, primary id, sample, self)``, in short: it runs per message."""
        event = Event(self._template)
        if self._arrow:
            event["value"] = ArrowValue(sample)
        event._sample = sample
        event._node = self
        return event

    def _token_event(self, token: Any) -> Any:
        """The event of a token other than a primary sample: an Event, None once the
        node is finished, or _SKIP for what the 2022 API does not show."""
        if token.__class__ is InputQueue:
            item = token.take()
            if item is CLOSED:
                self._after_close()
                if self._legacy:
                    return _SKIP
                return new_event(INPUT_CLOSED, token.id, node=self)
            if item.__class__ is int:  # a timer tick carries its time
                return new_event(INPUT, token.id, None, self, timestamp=item)
            return new_event(INPUT, token.id, item, self)
        if token is _STOP:
            self._finished = True
            return None if self._legacy else new_event(STOP, node=self)
        return _SKIP

    def _after_close(self) -> None:
        """dora's rule: once every non-timer input has closed, timers close and STOP follows."""
        if self._data_inputs and all(q.closed for q in self._data_inputs):
            for q in self._inputs.values():
                if q.timer_ns:
                    q.close()
            if all(q.closed and not q.items for q in self._inputs.values()):
                self._request_stop()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        if self._legacy is None:
            self._legacy = _caller_unpacks(sys._getframe(1))
        event = self._next(None)
        if event is None:
            raise StopIteration
        return event

    # -- sending -----------------------------------------------------------------------
    def send_output(self, output_id: str, data: Any = b"", metadata: dict | None = None) -> None:
        """Publish ``data`` on output ``output_id`` (key ``{prefix}/{dataflow}/{node}/{output}``).

        ``data``: bytes, bytearray, memoryview, str, a numpy array or a pyarrow array.
        ``metadata``: JSON-serialisable parameters, delivered as ``event["metadata"]``.
        """
        out = self._outputs.get(output_id)
        if out is None:
            declared = ", ".join(sorted(self._outputs)) or "none"
            raise UndeclaredOutputError(
                f"node '{self.node_id}' has no output '{output_id}' (declared outputs: {declared}); "
                f"add it to the node's `outputs:` in the dataflow YAML")
        seq = out[1]
        out[1] = seq + 1
        now = time_ns()
        att = _SEQ_TS % (seq, now) if not metadata else wire.attachment(seq, now, metadata)
        cls = data.__class__
        if cls is bytes:  # the common case, kept short: it runs per message
            out[0].put(data, attachment=att)
        else:
            if cls is ArrowValue:  # forwarding a received value: Zenoh's own buffer, no copy
                sample = data._sample
                payload, encoding = (sample.payload, sample.encoding) if sample is not None else (b"", None)
                if encoding == wire.ENC_BYTES:
                    encoding = None  # the publisher's default: don't pass (and convert) it again
            else:
                payload, encoding = wire.encode(data)
            if encoding is None:
                out[0].put(payload, attachment=att)
            else:
                out[0].put(payload, encoding=encoding, attachment=att)
        if now - self._yielded_at > self._yield_gap:  # let Zenoh's thread send it: see dora_zenoh.tuning.sched
            self._yielded_at = now
            _sched_yield()

    # -- information -------------------------------------------------------------------
    def dataflow_descriptor(self) -> dict:
        """The dataflow's YAML, parsed (dora's ``node.dataflow_descriptor()``)."""
        import yaml

        if not self._cfg.descriptor:  # a ROS-like node has no YAML
            return {"nodes": []}
        with open(self._cfg.descriptor, encoding="utf-8") as f:
            return yaml.safe_load(f)

    def dataflow_id(self) -> str:
        """The running dataflow's name (its key chunk)."""
        return self._dataflow

    @property
    def outputs(self) -> list[str]:
        return list(self._outputs)

    @property
    def inputs(self) -> list[str]:
        return list(self._inputs)

    # -- shutdown ----------------------------------------------------------------------
    def close(self) -> None:
        """Announce end-of-stream on every output, then leave. Called at exit too."""
        if self._closed:
            return
        self._closed = True
        try:
            atexit.unregister(self.close)
            if self._timers:
                self._timers.stop()
            for q in self._inputs.values():
                q.release()
            notice = {"node": self.node_id, "outputs": {o: v[1] for o, v in self._outputs.items()},
                      "ended": time.time()}
            self._eos_pub.put(json.dumps(notice).encode())
        finally:
            self._wake.close()
            self._session.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass


def _setting(read: Callable[[], _T]) -> _T | None:
    """A setting from the environment; None, after a warning that names the fix, when it is
    malformed (a bad tuning value must not stop the node)."""
    try:
        return read()
    except ValueError as exc:
        warn(str(exc))
        return None


__all__ = ["Node", "Event", "INPUT", "INPUT_CLOSED", "STOP", "ERROR"]
