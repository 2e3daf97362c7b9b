"""The Python operator runtime: the process behind a node with ``operator:`` / ``operators:``.

``dora-zenoh run`` starts it as ``python -m dora_zenoh.operators.runtime`` with the node's
configuration in ``$DORA_ZENOH_NODE_CONFIG`` (see :func:`dora_zenoh.wire.contract.node_config`):
the operators' inputs are the node's inputs ``opid/input`` and their outputs the node's
outputs ``opid/out`` (key ``{prefix}/{dataflow}/{node}/{opid}/{out}``).

Design:

* **One Node underneath.** The runtime *is* a :class:`~dora_zenoh.node.node.Node` (queues and
  their policies, timers, INPUT_CLOSED/STOP, the start barrier, metadata, Arrow values
  all carry over) whose events are routed by their ``opid/`` prefix to the operator
  that owns the input, with the prefix removed.
* **One thread calls handlers**, the main thread, so an operator is never entered twice
  at once and operators share the GIL as dora's docs warn. Operators are constructed
  before the node announces itself, so "ready" means ready.
* **In-process delivery.** Operators of one runtime that feed each other go through the
  runtime's own Zenoh session, which calls the subscriber synchronously inside
  ``put()``, on the main thread. With ``queue_policy: block`` and a full queue that
  thread would wait for itself for ever. So a message the main thread delivers to its
  own process is never held back: that queue may grow past ``queue_size`` by what one
  handler call sends, and nothing is dropped. Senders on other threads and in other
  processes are held back as usual.
* **STOP** (status 1) stops one operator: its inputs close, and its outputs announce
  end-of-stream so their readers get INPUT_CLOSED. The runtime exits when every
  operator has stopped. **STOP_ALL** (2) declares the dataflow's stop token, which every
  node and the runner treat like Ctrl-C. An exception or an invalid status stops the
  operator, logs why under its id, and the process exits 1 at the end naming it.
* **stdout** is attributed to the operator whose handler is running: while a handler
  runs, ``sys.stdout`` tags its complete lines with the operator's id (when the node has
  several operators) and publishes them on the operator's ``send_stdout_as`` output.
"""
from __future__ import annotations

import json
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh import settings
from dora_zenoh.console import error, note, say
from dora_zenoh.errors import NodeConfigError
from dora_zenoh.node.api_extras import undeclared_output
from dora_zenoh.node.events import INPUT, INPUT_CLOSED, STOP, Event, new_event
from dora_zenoh.node.inputs import InputQueue
from dora_zenoh.node.node import Node
from dora_zenoh.operators.hotreload import FileWatcher
from dora_zenoh.operators.loader import STOP as STATUS_STOP
from dora_zenoh.operators.loader import (
    STOP_ALL,
    PythonOperator,
    bad_status_message,
    describe_exception,
    status_code,
)
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys
from dora_zenoh.wire.contract import InputConfig, NodeConfig

HOT_RELOAD_ENV = settings.HOT_RELOAD.name
_MAIN = threading.main_thread().ident


class RuntimeNode(Node):
    """The Node under an operator runtime: same set-up, two runtime-specific hooks."""

    # The runtime reads events itself and never unpacks them, but an operator may
    # (``dict(...)``/``for`` over an event): that must not switch the node to the 2022
    # API, which would hide INPUT_CLOSED from every operator.
    @property
    def _legacy(self) -> bool:
        return False

    @_legacy.setter
    def _legacy(self, value: Any) -> None:
        pass

    def _fifo_for(self, spec: InputConfig) -> bool:
        # An operator's output read by another operator of this runtime is delivered inside
        # our own put(): from a FIFO our thread would wait for itself once it is full. The
        # others read from FIFO channels as any node's do (and so ask the sender's replay
        # cache again before they count a gap: dora_zenoh.node.replay.CacheRepair).
        return spec.source_node != self._cfg.node

    def _input_callback(self, q: InputQueue, spec: InputConfig) -> Any:
        if spec.source_node != self._cfg.node or not q.block:
            return q.put

        def self_delivery(sample: Any) -> None:
            # Called inside our own put() when the main thread sends: never wait for
            # ourselves (see the module docstring); grow past queue_size instead.
            if threading.get_ident() == _MAIN and len(q.items) >= q.size:
                size = q.size
                q.size = len(q.items) + 1
                try:
                    q.put(sample)
                finally:
                    q.size = size
            else:
                q.put(sample)

        return self_delivery

    def end_outputs(self, output_ids: list[str]) -> None:
        """Announce end-of-stream on some outputs now (an operator stopped): their readers
        get INPUT_CLOSED after the last message, while the other operators go on."""
        counts = {o: self._outputs[o][1] for o in output_ids if o in self._outputs}
        if counts:
            # "partial": the process goes on; a runner must not date the node's end by it.
            notice = {"node": self.node_id, "outputs": counts, "partial": True}
            self._put_eos(notice)

    def request_dataflow_stop(self) -> Any:
        """Declare the dataflow's stop token: every node gets STOP, the runner stops the run."""
        secret = self._cfg.secret
        if secret:  # the runner believes a signed request, not a token any session could declare
            body = json.dumps({"node": self.node_id}).encode()
            self._session.put(keys.stop_request_key(self._cfg.prefix, self._dataflow), body,
                              attachment=wire.sign(secret, body), congestion_control=zenoh.CongestionControl.BLOCK)
        return self._session.liveliness().declare_token(keys.stop_token(self._cfg.prefix, self._dataflow))


class OperatorStdout:
    """``sys.stdout`` of a runtime: lines a handler prints belong to its operator.

    Outside handler calls, and on other threads, text passes through untouched. A
    partial line left at the end of a handler call is completed then.
    """

    def __init__(self, real: Any, tag: bool) -> None:
        self._real = real
        self._tag = tag
        self.current: PythonOperator | None = None
        self.publish: Any = None  # publish(op, line), once the node exists
        self.pending: list[tuple[PythonOperator, str]] = []  # lines printed before that
        self._partial = ""

    def write(self, text: str) -> int:
        op = self.current
        if op is None or threading.get_ident() != _MAIN or not (self._tag or op.send_stdout_as):
            return self._real.write(text)
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(op, line)
        return len(text)

    def _emit(self, op: PythonOperator, line: str) -> None:
        self._real.write(f"[{op.id}] {line}\n" if self._tag else line + "\n")
        if op.send_stdout_as and not op.stopped:
            if self.publish is None:
                self.pending.append((op, line))
            else:
                self.publish(op, line)

    @contextmanager
    def owner(self, op: PythonOperator) -> Iterator[None]:
        """Attribute what is printed inside the block to ``op``."""
        self.current = op
        try:
            yield
        finally:
            if self._partial:
                line, self._partial = self._partial, ""
                self._emit(op, line)
            self.current = None

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class Runtime:
    """Loads the operators of one runtime node and feeds them its events."""

    def __init__(self, cfg: NodeConfig, hot_reload: bool = False) -> None:
        self.cfg = cfg
        self.node_id: str = cfg.node
        self.ops = [PythonOperator(o.id, Path(o.python), list(o.inputs), list(o.outputs), o.send_stdout_as)
                    for o in cfg.operators]
        self.by_id = {op.id: op for op in self.ops}
        self.hot_reload = hot_reload
        self.node: RuntimeNode | None = None
        self.stdout = OperatorStdout(sys.stdout, tag=len(self.ops) > 1)
        self._stop_token: Any = None

    # -- life cycle --------------------------------------------------------------------
    def run(self) -> int:
        """Run until every operator has stopped or the dataflow stops; the exit code."""
        sys.stdout = self.stdout
        try:
            for op in self.ops:
                op.send_output = self._sender(op)
                with self.stdout.owner(op):
                    try:
                        op.load()
                    except Exception as exc:
                        self._fail(op, f"could not be loaded: {describe_exception(exc)}", exc, retire=False)
            if all(op.stopped for op in self.ops):
                return self._report()  # nothing to run: peers see us exit, not hang
            self.node = RuntimeNode()
            self.stdout.publish = self._publish_line
            for op, line in self.stdout.pending:
                self._publish_line(op, line)
            self.stdout.pending.clear()
            for op in self.ops:
                if op.stopped:
                    self._retire(op)
            watcher = None
            if self.hot_reload:
                watcher = FileWatcher(sorted({str(op.path) for op in self.ops}))
                watcher.start()
            try:
                self._loop(watcher)
            finally:
                if watcher is not None:
                    watcher.stop()
                self.node.close()
        finally:
            sys.stdout = self.stdout._real
        return self._report()

    def _loop(self, watcher: FileWatcher | None) -> None:
        node = self.node
        assert node is not None
        timeout = watcher.interval if watcher is not None else None
        while not all(op.stopped for op in self.ops):
            event = node._next(timeout)
            if watcher is not None:
                self._apply_reloads(watcher)
            if event is None:
                if node._finished:
                    return
                continue
            if event.type == STOP:
                for op in self.ops:
                    if not op.stopped and op.form == "event":
                        self._dispatch(op, new_event(STOP, None, node=node))
                return
            op_id, _, local = (event.id or "").partition("/")
            target = self.by_id.get(op_id)
            if target is None or target.stopped:
                continue  # an input of an operator that has stopped: drained, dropped
            if event.type == INPUT or (event.type == INPUT_CLOSED and target.form == "event"):
                event.id = local
                self._dispatch(target, event)

    # -- calling operators ---------------------------------------------------------------
    def _dispatch(self, op: PythonOperator, event: Event) -> None:
        with self.stdout.owner(op):
            try:
                result = op.call(event)
            except Exception as exc:
                self._fail(op, describe_exception(exc), exc)
                return
        code = status_code(result)
        if code is None:
            self._fail(op, bad_status_message(result))
        elif code == STATUS_STOP:
            self._retire(op)
        elif code == STOP_ALL:
            self._retire(op)
            if self._stop_token is None and self.node is not None:
                note(f"node '{self.node_id}': {op.label} returned STOP_ALL: stopping the dataflow")
                self._stop_token = self.node.request_dataflow_stop()

    def _sender(self, op: PythonOperator) -> Any:
        warned: set[str] = set()

        def send_output(output_id: str, data: Any = b"", metadata: dict | None = None) -> None:
            """Publish on this operator's output ``output_id`` (dora's ``send_output``)."""
            if output_id not in op.outputs and output_id != op.send_stdout_as:
                # dora-rs: a warning (once per output), the message dropped; strict on request
                strict = self.node.strict_outputs if self.node is not None else None
                undeclared_output(f"{op.label} of node '{self.node_id}'", output_id, list(op.outputs),
                                  warned, strict)
                return
            if op.stopped or self.node is None:
                raise RuntimeError(f"{op.label} has stopped (or not started): it cannot send")
            self.node.send_output(f"{op.id}/{output_id}", data, metadata)

        return send_output

    def _publish_line(self, op: PythonOperator, line: str) -> None:
        assert self.node is not None
        try:
            self.node.send_output(f"{op.id}/{op.send_stdout_as}", line)
        except Exception as exc:  # never let a log line take the operator down
            note(f"node '{self.node_id}': {op.label}: could not publish a stdout line: {exc}")

    def _fail(self, op: PythonOperator, why: str, exc: BaseException | None = None, retire: bool = True) -> None:
        """Stop ``op`` because of an error, logged under its id; the run will fail naming it."""
        op.failure = why
        note(f"node '{self.node_id}': {op.label} {why}; the operator is stopped")
        if exc is not None:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            for line in "".join(lines).rstrip("\n").split("\n"):
                say(f"[{op.id}] {line}")
        if retire:
            self._retire(op)
        else:
            op.stopped = True

    def _retire(self, op: PythonOperator) -> None:
        """``op`` runs no more: close its inputs (so senders are not held back by it) and end
        its outputs (so their readers get INPUT_CLOSED)."""
        op.stopped = True
        node = self.node
        if node is None:
            return
        for input_id in op.inputs:
            q = node._inputs.get(f"{op.id}/{input_id}")
            if q is not None:
                q.close()
                q.release()
        outs = list(op.outputs) + ([op.send_stdout_as] if op.send_stdout_as else [])
        node.end_outputs([f"{op.id}/{o}" for o in outs])

    # -- hot reload --------------------------------------------------------------------
    def _apply_reloads(self, watcher: FileWatcher) -> None:
        for path in watcher.changed():
            for op in self.ops:
                if str(op.path) != path or op.stopped:
                    continue
                with self.stdout.owner(op):
                    try:
                        op.reload()
                    except Exception as exc:
                        note(f"node '{self.node_id}': {op.label}: reload failed, the old code keeps running: "
                             f"{describe_exception(exc)}")
                        for line in traceback.format_exception_only(type(exc), exc):
                            say(f"[{op.id}] {line.rstrip()}")
                        continue
                note(f"node '{self.node_id}': {op.label} reloaded (state kept)")

    # -- result ------------------------------------------------------------------------
    def _report(self) -> int:
        failed = [op for op in self.ops if op.failure]
        for op in failed:
            note(f"node '{self.node_id}': {op.label} failed: {op.failure}")
        return 1 if failed else 0



def main() -> int:
    raw = settings.NODE_CONFIG.get()
    if not raw:
        note("the operator runtime is started by `dora-zenoh run` for nodes with `operator:` or "
             "`operators:`; it cannot run on its own")
        return 2
    try:
        cfg = NodeConfig.from_json(raw, settings.NODE_CONFIG.name)
    except NodeConfigError as exc:
        error(str(exc))
        return 2
    return Runtime(cfg, hot_reload=settings.HOT_RELOAD.get()).run()


if __name__ == "__main__":
    sys.exit(main())
