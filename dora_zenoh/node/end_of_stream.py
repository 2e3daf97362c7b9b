"""End of stream: the notice a node sends when it closes, and its readers' acknowledgements.

A closing node publishes how many messages it sent on each output, behind its last
messages (signed when the run has a secret). A reader closes that input once every one
of them is in (``InputQueue.finish``), and answers the sender's query that the notice is
here; the sender waits for those answers before its session closes, since closing a Zenoh
session is not a flush (see ``EndOfStream._await_readers``).
"""
from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import zenoh

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.node.config import read_setting as _setting
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys

if TYPE_CHECKING:
    from dora_zenoh.node.inputs import InputQueue
    from dora_zenoh.wire.contract import NodeConfig

# A node that exits waits until its readers have its end-of-stream notice (see Node.close):
# `queue_policy: block` readers up to $DORA_ZENOH_EXIT_TIMEOUT seconds (settings.EXIT_TIMEOUT),
# drop_oldest ones up to DROP_READER_WAIT.
DROP_READER_WAIT = 1.0


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
    _eos_pub: zenoh.Publisher
    _data_inputs: list[InputQueue]

    if TYPE_CHECKING:
        def _drop_malformed(self, key: str, problem: str) -> None: ...

    def _on_eos(self, sample: zenoh.Sample) -> None:
        key = str(sample.key_expr)
        node = key.rsplit("/", 1)[1]
        raw = sample.payload.to_bytes()
        notice, problem = wire.check_eos(raw, node)
        secret = self._cfg.secret
        if problem is None and secret and node not in self._restartable:  # a dynamic node has no secret
            att = sample.attachment
            if not wire.signed_by(secret, raw, att.to_bytes() if att is not None else None):
                problem = "notice is not signed by a process of this run (another Zenoh session sent it)"
        if problem is not None:
            self._drop_malformed(key, problem)
            return
        outputs = notice.get("outputs", {})
        if isinstance(notice.get("zid"), str):
            self._eos_seen[node] = notice["zid"]
        if node in self._restartable:  # its next process counts from 0 again: wait for exited/<node>
            return
        for q in self._data_inputs:
            if q.source_node == node and q.source_output in outputs:
                q.finish(outputs[q.source_output])

    def _on_ack_query(self, query: zenoh.Query) -> None:
        """A source asks whether its end-of-stream notice is here: the session id in it."""
        source = str(query.key_expr).split("/")[-2]
        key = keys.ack_key(self._cfg.prefix, self._dataflow, source, self.node_id)
        query.reply(key, json.dumps({"zid": self._eos_seen.get(source)}).encode())

    def _put_eos(self, notice: dict) -> None:
        """Send an end-of-stream notice, signed so that readers know a process of this run
        sent it (see ``wire.codec.sign``)."""
        body = json.dumps(notice).encode()
        secret = self._cfg.secret
        self._eos_pub.put(body, attachment=wire.sign(secret, body) if secret else None)

    def _await_readers(self, zid: str) -> None:
        """Before the session closes: wait until every live reader has our end-of-stream
        notice, which travels behind our messages, so that they are all in the reader.

        Closing a Zenoh session is not a flush: what a reader has not taken from the link
        yet (a `queue_policy: block` reader that is behind, a stalled process) is lost
        with the link. Block readers are waited for up to ``$DORA_ZENOH_EXIT_TIMEOUT``
        seconds (default 10), drop_oldest ones up to DROP_READER_WAIT (they must never hold
        their sender back for long); whoever has not confirmed by then is named in a warning.
        """
        readers = self._cfg.readers
        blockers = self._cfg.block_readers or {}
        sent = {o: v[1] for o, v in self._outputs.items() if v[1]}
        block = {r for o in sent for r in blockers.get(o, ())}
        others = {r for o in sent for r in readers.get(o, ())} - block
        if not block and not others:
            return
        timeout = _setting(settings.EXIT_TIMEOUT.get)
        timeout = settings.EXIT_TIMEOUT.default if timeout is None else timeout
        start = time.monotonic()
        limit = {r: start + (timeout if r in block else min(timeout, DROP_READER_WAIT)) for r in block | others}
        selector = keys.ack_key(self._cfg.prefix, self._dataflow, self.node_id, "*")
        acked: set[str] = set()
        late: set[str] = set()
        while True:
            now = time.monotonic()
            with self._state:
                waiting = {r for r in limit if r not in acked and r in self._alive and r not in self._exited}
            late = {r for r in waiting if now >= limit[r]}
            waiting -= late
            if not waiting:
                break
            try:
                for reply in self._session.get(selector, timeout=max(0.05, min(1.0, max(limit[r] for r in waiting) - now))):
                    if reply.ok is None:
                        continue
                    answer, problem = wire.load_json(reply.ok.payload.to_bytes())
                    if problem is None and isinstance(answer, dict) and answer.get("zid") == zid:
                        acked.add(str(reply.ok.key_expr).rsplit("/", 1)[1])
            except zenoh.ZError:
                break
            if not waiting - acked:
                break
            time.sleep(0.005)
        if late:
            waited = time.monotonic() - start
            total = sum(sent.values())
            warn(f"node '{self.node_id}': exiting after waiting {waited:.1f} s for {', '.join(sorted(late))} to "
                 f"receive its {total} message(s); they may miss the last ones (raise {settings.EXIT_TIMEOUT.name} to "
                 "wait longer for queue_policy: block readers)")
