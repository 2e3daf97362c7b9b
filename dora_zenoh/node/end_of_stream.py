"""End of stream: the notice a node sends when it closes, and its readers' acknowledgements.

A closing node publishes how many messages it sent on each output, behind its last
messages (signed when the run has a secret). A reader closes that input once every one
of them is in (``InputQueue.finish``), and says that the notice is here with a put on its
ack key; the sender waits for those acknowledgements before its session closes, since
closing a Zenoh session is not a flush (see ``EndOfStream._await_readers``).

The readers push their acknowledgements: the sender used to query them, and a query that
reached a reader as it closed its session stalled the sender's one-thread Zenoh runtime
for 10 s (its link closed with data unsent, SO_LINGER; docs/design/shutdown.md).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zenoh

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys

if TYPE_CHECKING:
    from dora_zenoh.node.inputs import InputQueue
    from dora_zenoh.node.shutdown import Helpers
    from dora_zenoh.wire.contract import NodeConfig

# A node that exits waits until its readers have its end-of-stream notice (see Node.close):
# `queue_policy: block` readers up to $DORA_ZENOH_EXIT_TIMEOUT seconds (settings.EXIT_TIMEOUT),
# drop_oldest ones until none has acknowledged (or left) for DROP_READER_WAIT, within that bound.
DROP_READER_WAIT = 1.0
# After the runner's STOP, the wait ends this long before the dataflow's grace period does
# ($DORA_ZENOH_STOP_GRACE), so that the node says who it waited for instead of being killed.
GRACE_MARGIN = 1.0
# After the runner's STOP, a node's STOP event waits for its inputs' sources to end, up to
# this share of the grace period (less the margin): see EndOfStream._drain_then_stop.
DRAIN_SHARE = 0.5
# A node still behind on its inputs this long before the grace period ends (or past half of it,
# if that is later) gets its STOP event next, ahead of what its inputs still hold (see
# Node._stop_overtakes): a slow reader with a deep queue used to reach STOP only after the
# period and was killed, and the dataflow failed.
OVERTAKE_BEFORE_END = 3.0


def acknowledge(session: zenoh.Session, key: str, zid: str) -> None:
    """Tell a sender its end-of-stream notice (of session ``zid``) is here, on ``key``
    (keys.ack_key). From a Zenoh callback: it never waits for room (an ack lost to a full
    queue costs its sender a wait and a warning, never data)."""
    try:
        session.put(key, json.dumps({"zid": zid}).encode(), congestion_control=zenoh.CongestionControl.DROP,
                    express=True)
    except zenoh.ZError:  # the session is closing
        pass


class EndOfStream:
    """Mixed into :class:`dora_zenoh.node.node.Node`, which sets up these attributes."""

    _cfg: NodeConfig
    _dataflow: str
    node_id: str
    _session: zenoh.Session
    _outputs: dict[str, list]
    _state: threading.Condition
    _alive: set[str]
    _exited: set[str]
    _restartable: set[str | None]
    _eos_seen: dict[str, str]
    _eos_counts: dict[str, dict[str, dict[str, Any]]]
    _eos_pub: zenoh.Publisher
    _data_inputs: list[InputQueue]
    _stop_at: float | None
    _recover_ids: set[str]
    _helpers: Helpers
    _closed: bool

    if TYPE_CHECKING:
        def _drop_malformed(self, key: str, problem: str) -> None: ...

    def _on_eos(self, sample: zenoh.Sample) -> None:
        key = str(sample.key_expr)
        node = key.rsplit("/", 1)[1]
        outputs = self._on_notice(sample, key, node)
        zid = self._eos_seen.get(node)
        if zid is None:
            return
        ack = keys.ack_key(self._cfg.prefix, self._dataflow, node, self.node_id)
        behind = [(q, count) for q in self._data_inputs
                  if q.source_node == node and q.id in self._recover_ids and not q.closed
                  and isinstance(count := outputs.get(q.source_output or ""), int)]
        if behind:  # on a thread of ours: a Zenoh callback must not wait
            self._helpers.start(self._ack_once_in, ack, zid, behind, name="dora-zenoh-ack")
        else:  # after the inputs took it: everything the sender sent is in us
            acknowledge(self._session, ack, zid)

    def _ack_once_in(self, ack: str, zid: str, behind: list[tuple[InputQueue, int]]) -> None:
        """Acknowledge a notice from another machine once its inputs here have every message it
        counts (or counted them lost). A sender's notice can overtake what it sent while the link
        was down: that is in its replay cache, which ends with its process, and the reader is
        still recovering it. Acknowledged at once, the sender ended and the rest was lost
        (docs/design/outage.md). Bounded by the sender's own wait (``$DORA_ZENOH_EXIT_TIMEOUT``),
        and ended by this node's close (it takes no more messages)."""
        deadline = time.monotonic() + settings.EXIT_TIMEOUT.get_or_default()
        while time.monotonic() < deadline and not self._closed:  # closing, this node takes no more
            if all(q.closed or (q.last_seq is not None and q.last_seq + 1 >= count) for q, count in behind):
                break
            time.sleep(0.01)
        acknowledge(self._session, ack, zid)

    def _on_notice(self, sample: zenoh.Sample, key: str, node: str) -> dict[str, Any]:
        """Check a notice and close (or count for) the inputs it ends; its counts per output."""
        raw = sample.payload.to_bytes()
        notice, problem = wire.check_eos(raw, node)
        secret = self._cfg.secret
        if problem is None and secret and node not in self._restartable:  # a dynamic node has no secret
            att = sample.attachment
            if not wire.signed_by(secret, raw, att.to_bytes() if att is not None else None):
                problem = "notice is not signed by a process of this run (another Zenoh session sent it)"
        if problem is not None:
            self._drop_malformed(key, problem)
            return {}
        outputs = notice.get("outputs", {})
        if isinstance(notice.get("zid"), str):
            self._eos_seen[node] = notice["zid"]
        if node in self._restartable:  # its next process counts from 0 again: wait for exited/<node>
            if isinstance(outputs, dict) and not notice.get("partial"):  # (see PeerWatch._close_counted_remote)
                self._eos_counts.setdefault(node, {})[str(notice.get("zid"))] = outputs
            return outputs
        for q in self._data_inputs:
            if q.source_node == node and q.source_output in outputs:
                q.finish(outputs[q.source_output])
        return outputs  # wire.check_eos made sure: output ids to counts

    def _listen_for_acks(self) -> tuple[Any, set[str], threading.Condition]:
        """Before our notice goes out: the subscriber that collects our readers' acknowledgements
        of it (the readers that sent one, and a condition notified at each)."""
        acked: set[str] = set()
        arrived = threading.Condition()
        zid = str(self._session.zid())

        def on_ack(sample: zenoh.Sample) -> None:
            answer, problem = wire.load_json(sample.payload.to_bytes())
            if problem is None and isinstance(answer, dict) and answer.get("zid") == zid:
                with arrived:
                    acked.add(str(sample.key_expr).rsplit("/", 1)[1])
                    arrived.notify_all()

        sub = self._session.declare_subscriber(keys.ack_key(self._cfg.prefix, self._dataflow, self.node_id, "*"),
                                               zenoh.handlers.Callback(on_ack, indirect=False))
        return sub, acked, arrived

    def _put_eos(self, notice: dict) -> None:
        """Send an end-of-stream notice, signed so that readers know a process of this run
        sent it (see ``wire.codec.sign``)."""
        body = json.dumps(notice).encode()
        secret = self._cfg.secret
        self._eos_pub.put(body, attachment=wire.sign(secret, body) if secret else None)

    def _grace_left(self, now: float) -> float | None:
        """Seconds left, at ``now``, of the grace period the runner gives after its STOP (None
        before STOP, or when the runner set none): what the node's exit must fit in."""
        if self._stop_at is None:
            return None
        grace = settings.STOP_GRACE.get_or_default()
        return None if grace is None else self._stop_at + grace - now

    def _drain_then_stop(self, inputs: list[InputQueue], put_stop: Callable[[], None]) -> None:
        """The runner's STOP reached every node at about the same time: hand this node its STOP
        once ``inputs`` (inputs whose sources were up, of either queue policy) have closed, each
        after the last message its source sent, so that what a source sends between its STOP
        and its exit reaches its readers, which end their loop at STOP (dora's rule). Before,
        they missed it uncounted: 79 block readers of an 80-node fan-out got STOP ~2 s before
        their source and lost its last 18-31 messages; drop_oldest readers with room in their
        queues lost 2-3 in a 5-node chain (4 Dec). Bounded by DRAIN_SHARE of the grace period: a
        source that ignores STOP, or a cycle, delays the STOP no further; then whatever has not
        been read is counted at exit (InputQueue.report_at_exit)."""
        left = self._grace_left(time.monotonic())
        limit = max(0.0, ((10.0 if left is None else left) - GRACE_MARGIN) * DRAIN_SHARE)
        deadline = time.monotonic() + limit
        while not all(q.closed for q in inputs) and time.monotonic() < deadline and not self._closed:
            time.sleep(0.01)
        put_stop()

    def _await_readers(self, acked: set[str], arrived: threading.Condition) -> None:
        """Before the session closes: wait until every live reader has our end-of-stream
        notice, which travels behind our messages, so that they are all in the reader.

        Closing a Zenoh session is not a flush: what a reader has not taken from the link
        yet (a `queue_policy: block` reader that is behind, a stalled process) is lost
        with the link. Block readers are waited for up to ``$DORA_ZENOH_EXIT_TIMEOUT``
        seconds (default 10), drop_oldest ones within that as long as one of them confirmed (or
        left) in the last DROP_READER_WAIT (a stalled one must never hold its sender back for
        long; a fan-out's readers all ending at once on two cores confirmed over ~2 s, and a
        fixed second named dozens that had everything); whoever has not confirmed by then is
        named in a warning.
        ``acked``/``arrived``: from :meth:`_listen_for_acks`.
        """
        readers = self._cfg.readers
        blockers = self._cfg.block_readers or {}
        sent = {o: v[1] for o, v in self._outputs.items() if v[1]}
        block = {r for o in sent for r in blockers.get(o, ())}
        others = {r for o in sent for r in readers.get(o, ())} - block
        if not block and not others:
            return
        timeout = settings.EXIT_TIMEOUT.get_or_default()
        start = time.monotonic()
        by_grace = False
        left = self._grace_left(start)  # after the runner's STOP: within its grace period
        if left is not None and left - GRACE_MARGIN < timeout:
            timeout, by_grace = max(0.0, left - GRACE_MARGIN), True
        end = start + timeout
        drop_end = min(end, start + DROP_READER_WAIT)
        unconfirmed = len(block | others) + 1
        late: set[str] = set()
        while True:
            now = time.monotonic()
            with self._state:  # (a reader that exited or left is not waited for)
                waiting = {r for r in block | others if r in self._alive and r not in self._exited}
            with arrived:
                waiting -= acked
                if len(waiting) < unconfirmed:  # progress: the drop_oldest readers get DROP_READER_WAIT more
                    unconfirmed, drop_end = len(waiting), min(end, now + DROP_READER_WAIT)
                limit = {r: end if r in block else drop_end for r in waiting}
                late = {r for r in waiting if now >= limit[r]}
                waiting -= late
                if not waiting:
                    break
                # woken by an ack; a reader that leaves is seen within 50 ms
                arrived.wait(min(0.05, max(limit[r] for r in waiting) - now))
        if late:
            waited = time.monotonic() - start
            total = sum(sent.values())
            warn(f"node '{self.node_id}': exiting after waiting {waited:.1f} s for {', '.join(sorted(late))} to "
                 f"receive its {total} message(s); they may miss the last ones ("
                 + ("the dataflow's grace period after STOP ends: raise --grace of run/start/stop)" if by_grace else
                    f"raise {settings.EXIT_TIMEOUT.name} to wait longer for queue_policy: block readers)"))
