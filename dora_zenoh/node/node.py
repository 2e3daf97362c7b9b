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
import functools
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from time import time_ns
from typing import Any

import zenoh

from dora_zenoh import settings
from dora_zenoh.console import note, say, warn
from dora_zenoh.errors import NodeClosedError, NodeConfigError
from dora_zenoh.node import arrow, replay, shutdown
from dora_zenoh.node import config as sources
from dora_zenoh.node.api_extras import NodeExtras
from dora_zenoh.node.barrier import StartBarrier
from dora_zenoh.node.compat import caller_unpacks as _caller_unpacks
from dora_zenoh.node.config import read_setting as _setting
from dora_zenoh.node.end_of_stream import OVERTAKE_BEFORE_END, EndOfStream
from dora_zenoh.node.events import (
    ERROR,
    INPUT,
    INPUT_CLOSED,
    STOP,
    STOP_ALL_INPUTS_CLOSED,
    STOP_MANUAL,
    TIMEOUT_ERROR,
    Event,
    attach_value,
    decode_for_2022,
    new_event,
)
from dora_zenoh.node.fifo import FifoInput
from dora_zenoh.node.inbox import Inbox
from dora_zenoh.node.inputs import CLOSED, START_BACKLOG_BYTES, InputQueue, TimerThread
from dora_zenoh.node.lockbox import LockInbox
from dora_zenoh.node.malformed import MalformedChecks, plain_attachment
from dora_zenoh.node.peers import PeerWatch
from dora_zenoh.node.supervisor import SupervisorWatch
from dora_zenoh.tuning import sched
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys, relink, zconfig
from dora_zenoh.wire.contract import InputConfig, NodeConfig
from dora_zenoh.wire.endpoint import parse as parse_endpoint
from dora_zenoh.wire.stderr_tags import CLOSE_FAILED_TAG

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
_BLOCK = zenoh.CongestionControl.BLOCK
_DROP = zenoh.CongestionControl.DROP
_ENC_BYTES = wire.ENC_BYTES


class Node(StartBarrier, PeerWatch, EndOfStream, MalformedChecks, NodeExtras):
    """A dataflow node. See docs/reference/node-api.md for both API generations.

    Set-up, receiving, sending and closing are here; the rest is mixed in, one concept per
    module of ``dora_zenoh.node``: ``barrier`` (the start barrier), ``peers`` (other nodes'
    tokens, believed once the runner confirms them), ``end_of_stream`` (the notice sent on
    close and the readers' acknowledgements), ``malformed`` (messages refused and counted),
    ``api_extras`` (the rest of dora-rs's API).

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
    # The last value built and its sample: sending that very array on sends the sample's buffer.
    # (Not None before the first: send_output(o, None) took Zenoh's buffer of no sample.)
    _fwd_value: Any = object()
    _fwd_sample: Any = None
    _values_read = False  # an event's value was read: build the next ones with their events (see attach_value)
    _relinker: relink.Relinker | None = None

    def __init__(self, node_id: str | None = None, *, dataflow: str | None = None,
                 endpoint: str | None = None, barrier_timeout: float | None = None,
                 inputs: dict[str, Any] | None = None, outputs: list[str] | None = None) -> None:
        self._closed = True
        self._legacy: bool | None = None  # the 2022 API? decided on first read (see dora_zenoh.node.compat)
        joined = sources.join(node_id, dataflow, endpoint, inputs, outputs)  # see dora_zenoh.node.config
        self._cfg: NodeConfig = joined.cfg
        self._session, self._closed = joined.session, False
        # a peer on another machine whose link closed is linked again (see dora_zenoh.wire.relink)
        self._relinker = relink.Relinker(joined.session, joined.relink_listen) if joined.relink_listen else None
        # our listener's port: where a link Zenoh stranded would be (see dora_zenoh.wire.stranded)
        self._stranded_port = (parse_endpoint(joined.listen).stream_port or None) if joined.listen else None
        self._setup(barrier_timeout if barrier_timeout is not None else joined.barrier_timeout)
        atexit.register(self.close)
        # This thread reads the events: its scheduler settings, see dora_zenoh.tuning.sched.
        sched.request_slice(_setting(sched.slice_from_env) or 0)
        yield_gap = _setting(sched.send_yield_gap_ns)
        self._yield_gap = yield_gap or _NEVER
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
        self._stop_cause = STOP_MANUAL
        self._stop_at: float | None = None  # when the runner's STOP came (monotonic)
        self._finished = False
        self._state = threading.Condition()
        self._alive: set[str] = set()
        self._exited: set[str] = set()
        self._checking: set[tuple[str, str]] = set()  # tokens being confirmed (see _believe)
        self._stop_token = False
        self._gone_forged: set[str] = set()  # nodes reported gone while their token was there
        self._gate_open = not cfg.start_gate  # see dora_zenoh.node.barrier
        self._link_lost: set[str] = set()  # sources whose link closed while they ran
        # Readers whose put may wait for room (BLOCK): when one links again after its link
        # closed, a link Zenoh stranded is looked for (see PeerWatch._close_stranded)
        held = cfg.block_readers.values() if cfg.block_readers is not None else cfg.readers.values()
        self._held_by = frozenset(r for rs in held for r in rs)
        self._held_gone: set[str] = set()  # of those, the ones whose token went away
        # What may call Python from Zenoh: undeclared, and joined, before the session closes
        # (see dora_zenoh.node.shutdown).
        self._callbacks: list = []
        self._helpers = shutdown.Helpers()
        self._left = False  # set when close() starts to leave: helpers stop asking Zenoh

        # Outputs: [publisher put first, next sequence number, publisher also put or None, the
        # data key's publisher, the block key's or None, the lock a send holds]. Only
        # `queue_policy: block` readers may hold a sender back: an output that none of them
        # reads is published on its data key with congestion control DROP (a stalled reader
        # loses messages, counted by their seq gaps, and the sender and other readers go on);
        # one that a block reader reads is published on keys.block_key for its block readers
        # (BLOCK), and on its data key (DROP) only while something subscribes there: a
        # drop_oldest reader, a tool, a plain client.
        self._outputs: dict[str, list] = {}
        block_readers = cfg.block_readers  # None: not from a runner; keep BLOCK
        split = set(cfg.split_outputs)
        # Read by a block reader on another machine: the block readers' publisher keeps the last
        # messages for that reader to recover after a link outage (see dora_zenoh.node.replay).
        replayed = set(cfg.replay_outputs)
        for out_id, key in cfg.outputs.items():
            blocking = (block_readers is None or bool(block_readers.get(out_id))) and out_id not in split
            declare = replay.declare_publisher if out_id in replayed and out_id not in split else _declare
            pub = declare(session, key, encoding=wire.ENC_BYTES, express=_EXPRESS,
                          congestion_control=_BLOCK if blocking else _DROP)
            if out_id not in split:
                self._outputs[out_id] = [pub, 0, None, pub, None, threading.Lock()]
                continue
            declare = replay.declare_publisher if out_id in replayed else _declare
            blk = declare(session, keys.block_key(prefix, self._dataflow, f"{self.node_id}/{out_id}"),
                          encoding=wire.ENC_BYTES, express=_EXPRESS, congestion_control=_BLOCK)
            out = self._outputs[out_id] = [blk, 0, None, pub, blk, threading.Lock()]
            self._callbacks.append(pub.declare_matching_listener(zenoh.handlers.Callback(  # (no thread of its own)
                functools.partial(_follow_matching, out), indirect=False)))
            _follow_matching(out, pub.matching_status)
        self._sent_at_wait = 0
        self._flush_pub = session.declare_publisher(keys.flush_key(prefix, self._dataflow, self.node_id),
                                                    express=True)
        # An express message moves out its own priority's batch only: replayed outputs (sent at
        # replay.PRIORITY) get a flush of their own.
        self._flush_replayed = session.declare_publisher(
            keys.flush_key(prefix, self._dataflow, self.node_id), express=True,
            priority=replay.PRIORITY) if replayed and replay.bound() else None
        self._eos_pub = session.declare_publisher(
            keys.eos_key(prefix, self._dataflow, self.node_id),
            congestion_control=zenoh.CongestionControl.BLOCK)

        # Sources that may restart (or leave and rejoin): only their final exited token closes.
        self._restartable = {s.source_node for s in cfg.inputs.values() if s.restartable}
        sources = self._setup_inputs(cfg.inputs, prefix)
        self._flush_subs = []
        self._eos_seen: dict[str, str] = {}  # source node -> the session id in its last notice
        # a source that may restart -> its processes' counts per output, from their notices (by session id)
        self._eos_counts: dict[str, dict[str, dict[str, Any]]] = {}
        self._recover_ids = {i for i, spec in cfg.inputs.items() if spec.recover}
        self._sent_counts: dict[str, dict[str, int]] = {}  # source node -> output -> count (sent tokens)
        self._late_counts: dict[tuple[str, str], InputQueue] = {}
        self._malformed: dict[tuple[str, str], int] = {}  # (key, what was wrong) -> samples dropped
        callbacks = self._callbacks
        for source in sorted(sources):
            callbacks.append(session.declare_subscriber(keys.eos_key(prefix, self._dataflow, source),
                                                        zenoh.handlers.Callback(self._on_eos, indirect=False)))
            # Never read: it is there so that the source's flushes reach us (see _flush).
            self._flush_subs.append(session.declare_subscriber(
                keys.flush_key(prefix, self._dataflow, source), zenoh.handlers.RingChannel(1)))
        if self._outputs:
            self._wake.before_wait = self._flush
        self._data_inputs = [q for q in self._inputs.values() if not q.timer_ns]
        self._stats_q = session.declare_queryable(keys.stats_key(prefix, self._dataflow, self.node_id),
                                                  zenoh.handlers.Callback(self._on_stats_query,
                                                                          indirect=False))
        callbacks.append(self._stats_q)
        self._supervisor = SupervisorWatch(self.node_id, cfg.runner, self._request_stop)
        self._live_root = keys.live_root(prefix, self._dataflow) + "/"
        # Whose tokens matter to us: our sources (their end closes our inputs) and our readers
        # (the start barrier and the wait at exit). Acting on every node's tokens made each
        # node ask the runner about each one that exits: N^2 queries at the end of a big run.
        self._peers = sources | {r for rs in cfg.readers.values() for r in rs}
        callbacks.append(session.liveliness().declare_subscriber(
            self._live_root + "**", zenoh.handlers.Callback(self._on_live, indirect=False), history=True))
        # Announced only now, after every input is subscribed (and pyarrow, which builds every
        # input's value, is imported): the token means "ready".
        arrow.wait_preloaded()
        self._token = session.liveliness().declare_token(keys.node_token(prefix, self._dataflow, self.node_id))
        self._barrier(cfg.readers, barrier_timeout)
        if self._timers:  # ticking from here, as in dora-rs: not while the dataflow still starts
            self._timers.start()

    def _setup_inputs(self, specs: dict[str, InputConfig], prefix: str) -> set[str]:
        """Queues for every input, the inbox our thread waits on, and the Zenoh subscribers.

        The primary input (the first non-timer ``drop_oldest`` one) is read from the
        inbox's ring channel by our thread; a ``block`` input from a FIFO channel by our
        thread too (see :mod:`dora_zenoh.node.fifo`); every other input has a bounded queue fed
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
            elif in_id in cfg.resume_seqs and not spec.restartable:
                # restarted: what its source sent since our last process's last one is a gap, counted
                # (it was lost uncounted: 449-598 of 4,000 in a helper's runs)
                q.last_seq = cfg.resume_seqs[in_id]
            if spec.blocks:  # until the start barrier is over (see dora_zenoh.node.barrier)
                q.early_room = START_BACKLOG_BYTES
            self._inputs[in_id] = q
        self._primary = self._inputs[primary_id] if primary_id else None
        # What every event of the primary input starts from (see _sample_event).
        self._template = {"type": INPUT, "id": primary_id}
        self._arrow = wire.has_pyarrow()
        if self._arrow and specs:
            arrow.preload()  # event values are pyarrow arrays: imported before we say "ready"
        timers = [q for q in self._inputs.values() if q.timer_ns]
        # Block inputs from FIFO channels, unless turned off, or the input is one the node feeds
        # itself (_fifo_for: the operator runtime's own outputs), or it shares the ring's key (the
        # markers would fill its FIFO). One from another machine: its advanced subscriber fills it.
        fifo_ok = settings.BLOCK_FIFO.get()
        ring_key = specs[primary_id].key if primary_id else None
        fifo_any = fifo_ok and any(not sp.is_timer and self._fifo_for(sp) for sp in specs.values())
        if primary_id is None and not fifo_any:
            # nothing to wait for in Zenoh (no primary input, no FIFO): a lock, and our own ticks
            self._wake = LockInbox(timers)
        else:
            if ring_key is None:
                ring_key = keys.wake_key(prefix, self._dataflow, self.node_id, str(session.info.zid()))
            # Room for every marker that can be outstanding (one per queued token, see inbox).
            ring_size = sum(q.size + 1 for q in self._inputs.values()) + 8
            self._wake = Inbox(session, ring_key, ring_size, self._primary)
        sources: set[str] = set()
        for in_id, q in self._inputs.items():
            q.wake = self._wake
            if q.timer_ns:
                continue
            spec = specs[in_id]
            if spec.key is None or spec.source_node is None:  # InputConfig.from_dict gives every non-timer both
                raise NodeConfigError(f"input {in_id!r} of node {cfg.node!r} has neither a timer nor a source")
            sources.add(spec.source_node)
            if q is not self._primary:
                recovering = None
                if spec.recover:  # a block input from another machine: see dora_zenoh.node.replay
                    recovering = functools.partial(replay.RecoveringSubscriber, session, spec.key,
                                                   node=cfg.node, input_id=in_id,
                                                   source=f"{q.source_node}/{q.source_output}")
                if q.block and fifo_ok and self._fifo_for(spec) and spec.key != ring_key \
                        and isinstance(self._wake, Inbox):
                    self._wake.add_fifo(FifoInput(session, spec.key, q, declare=recovering))
                    continue
                callback = self._input_callback(q, spec)
                if spec.key == ring_key:  # same output as the primary input: the inbox's markers
                    callback = _without_markers(callback)  # reach this subscriber too
                if recovering is not None:
                    self._callbacks.append(recovering(callback))
                    continue
                self._callbacks.append(session.declare_subscriber(spec.key, zenoh.handlers.Callback(
                    callback, indirect=False)))
        # The one FIFO input, alone or beside the primary input, whose messages come out of the
        # inbox as samples too (its fifo_sample says a sample is that input's).
        one = self._wake.one
        self._fifo_template = {"type": INPUT, "id": one.queue.id} if one is not None else self._template
        # A LockInbox ticks the timers itself, on our thread (see dora_zenoh.node.lockbox).
        self._timers: TimerThread | LockInbox | None = None
        if timers:
            self._timers = self._wake if isinstance(self._wake, LockInbox) else TimerThread(timers)
        return sources

    def _input_callback(self, q: InputQueue, spec: InputConfig) -> Any:
        """The Zenoh callback feeding input ``q``; a hook for the operator runtime, which must
        not block on messages it delivers to itself (see ``dora_zenoh.operators.runtime``)."""
        return q.put

    def _fifo_for(self, spec: InputConfig) -> bool:
        """Whether a ``block`` input may be read from a FIFO channel (a hook: see ``_input_callback``)."""
        return True

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
            if self._flush_replayed is not None:
                self._flush_replayed.put(b"")
        self._sent_at_wait = sent
        return new > 0

    # -- Zenoh callbacks (on Zenoh threads) ------------------------------------------------
    def _on_stats_query(self, query: zenoh.Query) -> None:
        """``list NAME``, ``node info``, ``topic info``, ``top``: what this node sent per output
        (its sequence numbers), and per input its source, policy, messages received and
        dropped and the queue's depth now. Counters the data path keeps anyway: asking costs
        the node one reply, and nothing while nobody asks."""
        inputs = {}
        for in_id, q in getattr(self, "_inputs", {}).items():
            inputs[in_id] = {
                "source": f"{q.source_node}/{q.source_output}" if q.source_node else None,
                "timer_ns": q.timer_ns, "queue_size": q.size,
                "policy": "block" if q.block else "drop_oldest",
                "received": q.received, "dropped": q.dropped, "queued": len(q.items)}
        import os  # here, not at the top: this method is all this feature changes in node.py

        reply = {"sent": {o: v[1] for o, v in self._outputs.items()}, "inputs": inputs, "pid": os.getpid(),
                 "machine": self._cfg.machine or os.uname().nodename, "host": os.uname().nodename}
        query.reply(keys.stats_key(self._cfg.prefix, self._dataflow, self.node_id), json.dumps(reply))

    def _sources_sent(self) -> dict[tuple[str | None, str | None], int]:
        """At exit, for inputs still open: how many their sources have sent (their stats, 0.5 s
        at most), so that what never reached this node is counted too."""
        with self._state:  # (a source that is gone would not answer: no wait for it)
            open_sources = {q.source_node for q in self._data_inputs
                            if not q.closed and not q.stdout and q.source_node in self._alive}
        counts: dict[tuple[str | None, str | None], int] = {}
        for source in sorted(n for n in open_sources if n is not None):
            try:
                for reply in self._session.get(keys.stats_key(self._cfg.prefix, self._dataflow, source), timeout=0.5):
                    if reply.ok is not None:
                        stats, problem = wire.load_json(reply.ok.payload.to_bytes())
                        sent = stats.get("sent") if problem is None and isinstance(stats, dict) else None
                        for out, n in (sent or {}).items() if isinstance(sent, dict) else ():
                            if n.__class__ is int:
                                counts[(source, out)] = n
            except zenoh.ZError:
                break
        return counts

    def _request_stop(self, cause: str = STOP_MANUAL) -> None:
        drain: list[InputQueue] = []
        with self._state:
            if self._stopped:
                return
            self._stopped = True
            self._stop_cause = cause
            if cause == STOP_MANUAL:  # the runner's stop: its grace period runs (see _await_readers)
                self._stop_at = time.monotonic()
                drain = [q for q in self._data_inputs
                         if not q.stdout and not q.closed and q.source_node in self._alive]
            self._state.notify_all()
        if drain:  # STOP after what the inputs' sources still send (see EndOfStream._drain_then_stop)
            self._helpers.start(self._drain_then_stop, drain, self._put_stop, name="dora-zenoh-drain")
        else:
            self._put_stop()
        left = self._grace_left(time.monotonic()) if cause == STOP_MANUAL else None
        if left is not None:
            after = max(left / 2, left - OVERTAKE_BEFORE_END)
            timer = threading.Timer(after, self._stop_overtakes, (after, left))
            timer.daemon = True
            timer.start()

    def _stop_overtakes(self, after: float, grace: float) -> None:
        """The node is still behind on its inputs late in the grace period after STOP: its STOP
        event comes next, ahead of what they still hold (counted at its exit as not read), so it
        ends in time instead of being killed (OVERTAKE_BEFORE_END)."""
        if self._finished or self._closed:
            return
        self._wake.urgent = _STOP
        if not self._data_inputs:  # (a source that is not reading its events is behind on nothing)
            return
        note(f"node '{self.node_id}': still behind on its inputs {after:.1f} s after STOP (grace period "
             f"{grace:.3g} s): STOP comes next, ahead of the messages they still hold (counted when it ends)")

    def _put_stop(self) -> None:
        self._wake.put(_STOP)

    # -- receiving ---------------------------------------------------------------------
    def next(self, timeout: float | None = None) -> Event | None:
        """The next event, blocking (GIL released) up to ``timeout`` seconds.

        On timeout: an ERROR event whose ``error`` is dora-rs's "Timeout event stream error:
        Receiver timed out" (None on the 2022 API, as it always was). Returns None for ever
        once the dataflow stops or every input has closed (after a STOP event).
        """
        if self._legacy is None:
            self._legacy = _caller_unpacks(sys._getframe(1))
        if timeout is not None and not timeout <= threading.TIMEOUT_MAX:  # inf, NaN or centuries
            if timeout != timeout:
                raise ValueError("next(timeout=nan): the timeout must be a number of seconds (or None)")
            timeout = None  # no deadline: a wait that long overflows the platform's clock
        event = self._next(timeout)
        if event is None and timeout is not None and not self._finished and not self._legacy:
            return new_event(ERROR, node=self, error=TIMEOUT_ERROR)
        return event

    def _next(self, timeout: float | None) -> Event | None:
        get = self._wake.get
        while not self._finished:
            try:
                token = get(timeout)
            except queue.Empty:
                return None
            if token.__class__ is _SAMPLE:  # the primary (or one FIFO) input's message, straight from Zenoh
                wake = self._wake
                raw = wake.attachment
                if (raw is not None and plain_attachment(raw)) or self._admit(token, raw):
                    try:  # what _event_of does, without its call per message
                        return self._sample_event(token, self._fifo_template if wake.fifo_sample else self._template)
                    except ImportError:
                        raise
                    except Exception as exc:
                        self._bad_payload(token, exc)
                continue
            event = self._token_event(token)
            if event is not _SKIP:
                return event
        return None

    def _sample_event(self, sample: zenoh.Sample, template: dict) -> Event:
        """``new_event(INPUT, input id, sample, self)``, in short: it runs per message."""
        event = Event(template)
        event._sample = sample
        event._node = self
        if self._arrow and not self._legacy:
            attach_value(event, sample, self)  # may build the value only when it is read
        else:
            event._raw = event._how = None
            if self._legacy:
                decode_for_2022(event)
        return event

    def _token_event(self, token: Any) -> Any:
        """The event of a token other than a primary sample: an Event, None once the
        node is finished, or _SKIP for what the 2022 API does not show."""
        if token.__class__ is InputQueue:
            item = token.take()
            if item is CLOSED:
                token.report_closed()
                self._after_close()
                if self._legacy:
                    return _SKIP
                return new_event(INPUT_CLOSED, token.id, node=self)
            if item.__class__ is int:  # a timer tick carries its time
                return new_event(INPUT, token.id, None, self, timestamp=item)
            if not self._admit(item):
                return _SKIP
            event = self._event_of(item, new_event, INPUT, token.id, item, self)
            return _SKIP if event is None else event
        if token is _STOP:
            self._finished = True
            return None if self._legacy else new_event(STOP, self._stop_cause, node=self)
        if token.__class__ is Event:  # put back by is_empty() or a cancelled recv_async()
            return token
        return _SKIP

    def _after_close(self) -> None:
        """dora's rule: once every non-timer input has closed, timers close and STOP follows."""
        if self._data_inputs and all(q.closed for q in self._data_inputs):
            for q in self._inputs.values():
                if q.timer_ns:
                    q.close()
            if all(q.closed and not q.items for q in self._inputs.values()):
                self._request_stop(STOP_ALL_INPUTS_CLOSED)

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
            self._undeclared_output(output_id)  # dora-rs: a warning (once), the message dropped
            return
        cls = data.__class__
        if cls is bytes:  # the common case, kept short: it runs per message
            payload, encoding = data, None
        elif data is self._fwd_value:  # forwarding the value just received: Zenoh's own buffer
            sample = self._fwd_sample
            payload, encoding = sample.payload, sample.encoding
            if encoding == _ENC_BYTES:
                encoding = None  # the publisher's default: don't pass (and convert) it again
        else:
            payload, encoding = wire.encode(data)
        # Numbered and put under the output's lock: threads sending on one output put in the
        # order of their numbers (readers counted every overtaking as a loss: 2,104 of 12,000).
        with out[5]:
            seq = out[1]
            now = time_ns()
            # (numbered only once the metadata is known to be sendable: a number skipped is a loss to readers)
            att = _SEQ_TS % (seq, now) if not metadata else wire.attachment(seq, now, metadata)
            out[1] = seq + 1
            try:
                if encoding is None:
                    out[0].put(payload, attachment=att)
                    if out[2] is not None:  # a block-read output with data-key subscribers too: their copy
                        out[2].put(payload, attachment=att)
                else:
                    out[0].put(payload, encoding=encoding, attachment=att)
                    if out[2] is not None:
                        out[2].put(payload, encoding=encoding, attachment=att)
            except zenoh.ZError:
                out[1] = seq  # not sent
                if self._closed:  # Zenoh says only "session closed": name the call and the cause
                    raise NodeClosedError(f"node '{self.node_id}': send_output('{output_id}') after close(): "
                                          "the node has left the dataflow; send before closing it") from None
                raise
        if now - self._yielded_at > self._yield_gap:  # let Zenoh's thread send it: see dora_zenoh.tuning.sched
            self._yielded_at = now
            _sched_yield()

    # -- information (more in dora_zenoh.node.api_extras) ------------------------------
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
            self._wake.release_fifos()  # a Zenoh thread waiting for room would hold up the acks below
            behind = self._sources_sent()
            in_inbox = self._wake.unread_primary()  # (the ring's rest counts as the primary input's unread)
            for q in self._inputs.values():  # (after the FIFOs: what waited in them counts as unread)
                q.report_at_exit(behind.get((q.source_node, q.source_output)),
                                 in_inbox if q is self._primary else None)
            self._report_late_counts()
            zid = str(self._session.zid())
            notice = {"node": self.node_id, "outputs": {o: v[1] for o, v in self._outputs.items()},
                      "ended": time.time(), "zid": zid,  # inputs: where a restart of this node resumes
                      "inputs": {q.id: q.last_seq for q in self._data_inputs if q.last_seq is not None}}
            sent_file = settings.SENT_FILE.get()
            if sent_file:  # which of the node's processes this is, to its runner (supervision.sent)
                notice["sent_file"] = sent_file
            acks, acked, arrived = self._listen_for_acks()  # before the notice: no ack can be missed
            try:
                self._put_eos(notice)
                replay.mark_noticed()  # its runner takes the counts from the notice now
                self._await_readers(acked, arrived)
            finally:
                acks.undeclare()
            self._report_malformed()
        finally:
            self._wake.close()
            self._leave()

    def _leave(self) -> None:
        """Close the session so that no thread can come back into Python from Zenoh once the
        interpreter finalizes (that aborts the process: see dora_zenoh.node.shutdown). What
        cannot be made sure of is reported (the runner reads the tagged line and reports the
        node as failed), and the process then ends without finalizing."""
        self._left = True
        if self._relinker is not None:
            self._relinker.close()
        left = shutdown.undeclare_all(self._callbacks)
        stuck = self._helpers.join()  # they see _left within a poll (see shutdown.replies)
        problems = []
        try:
            wait = self._close_wait()
            if not shutdown.close_session(self._session, wait):
                warn(f"node '{self.node_id}': its Zenoh session was still closing after {wait:.1f} s "
                     "(a thread of the node still sending, or a link to a peer that does not answer); exiting "
                     "without waiting for it")
        except zenoh.ZError as exc:
            problems.append(f"its Zenoh session did not close cleanly: {zconfig.reason(exc)}")
            if left:  # Zenoh may still call what it could not undeclare
                problems.append(f"could not undeclare {', '.join(left)}")
                shutdown.hazard("callbacks not undeclared")
        if stuck:
            stuck = self._helpers.join(0.5)
        if stuck:
            problems.append(f"thread(s) {', '.join(stuck)} still running {shutdown.JOIN_TIMEOUT:g} s after it "
                            "began to close")
            shutdown.hazard("threads inside Zenoh", still=self._helpers.running)
        if problems:
            say(f"{CLOSE_FAILED_TAG} node '{self.node_id}': {'; '.join(problems)}")

    def _close_wait(self) -> float:
        """How long ``_leave`` waits for the session to close: shutdown.CLOSE_WAIT, less once
        the runner's STOP came, so that the node ends before its grace period does."""
        left = self._grace_left(time.monotonic())
        return max(0.2, shutdown.CLOSE_WAIT if left is None else min(shutdown.CLOSE_WAIT, left - 0.3))

    def _leaving(self) -> bool:
        """Whether close() has begun to leave: a helper's query stops waiting for replies."""
        return self._left

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


def _follow_matching(out: list, status: Any) -> None:
    """(A Zenoh callback, rare) a split output's data key is put only while it has subscribers:
    an output read by block readers alone costs one put per message, as before."""
    out[2] = out[3] if status.matching else None


def _declare(session: zenoh.Session, key: str, **options: Any) -> zenoh.Publisher:
    return session.declare_publisher(key, **options)


def _without_markers(callback: Callable[[zenoh.Sample], None]) -> Callable[[zenoh.Sample], None]:
    """``callback`` for data only. The inbox wakes the node with DELETE samples on the primary
    input's key (see dora_zenoh.node.inbox); another input of the same output would take
    them for messages and, queueing them, ring again: the node hung."""
    delete = zenoh.SampleKind.DELETE

    def data_only(sample: zenoh.Sample) -> None:
        if sample.kind != delete:
            callback(sample)
    return data_only


__all__ = ["Node", "Event", "INPUT", "INPUT_CLOSED", "STOP", "ERROR"]
