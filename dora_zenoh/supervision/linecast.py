"""A dataflow's log lines on Zenoh, for `start --attach` and `logs -f`, only while followed.

Lines go out only while a subscriber matches (a node printing 10 MB/s cost ~60 % of a core
when every line went onto Zenoh for nobody); a follower that joins late reads the past from
the log file (``logs``), then this. The coordinator casts its own nodes' lines on its
control socket; a daemon of the coordinator's machine casts its nodes' on the same socket,
so `start` shows every node's lines whichever of the two runs it.
"""
from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable
from typing import Any

import zenoh

from dora_zenoh.wire import keys


class LineCast:
    """The ``on_line`` hook of one dataflow's run (:class:`~dora_zenoh.supervision.run.RunOptions`)."""

    def __init__(self, sessions: zenoh.Session | list[zenoh.Session], name: str, run_id: str,
                 counts: dict[str, int], nodes: Iterable[str] = ()) -> None:
        # (a daemon casts on the machines' network, and on its own control socket for followers of
        # this machine: daemon.desk)
        self.sessions = sessions if isinstance(sessions, list) else [sessions]
        self.name, self.id = name, run_id
        self.counts = counts  # the run's lines per node so far: a follower skips those it read from the file
        self._pubs: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._closed = False
        # Declared before the nodes start: a publisher declared at a node's first line did not
        # know yet of a follower behind the control socket, and that line never went out.
        for node in nodes:
            self._publisher(node)

    def _publisher(self, node: str) -> list[Any]:
        pubs = self._pubs.get(node)
        if pubs is None:
            pubs = self._pubs[node] = [s.declare_publisher(keys.log_key(self.name, node)) for s in self.sessions]
        return pubs

    def __call__(self, node: str, line: str, is_stderr: bool, shown: str | None) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                message = None
                for pub in self._publisher(node):
                    if pub.matching_status.matching:
                        message = message or json.dumps({"id": self.id, "n": self.counts.get(node, 0), "line": line,
                                                         "shown": shown, "stderr": is_stderr})
                        pub.put(message)
            except zenoh.ZError:  # the session is closing: nobody is left to follow
                self._closed = True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pubs, self._pubs = [p for ps in self._pubs.values() for p in ps], {}
        for pub in pubs:
            try:
                pub.undeclare()
            except zenoh.ZError:
                pass


class LineRelay:
    """The lines of a dataflow's nodes on other machines, for followers on the control socket.

    Each such machine's daemon casts its nodes' lines on the machines' network; the coordinator
    subscribes there to a node's lines only while someone follows that node here, so nothing
    crosses the link unasked. A follower sees the lines from when its interest reaches the
    machine (the coordinator's own nodes and its machine's daemon's: from the first line).
    """

    def __init__(self, ctl: zenoh.Session, network: zenoh.Session, name: str, nodes: Iterable[str]) -> None:
        self._network, self._name = network, name
        self._lock = threading.Lock()
        self._closed = False
        self._pubs: dict[str, Any] = {}
        self._subs: dict[str, Any] = {}
        self._listeners: list[Any] = []
        for node in nodes:
            pub = self._pubs[node] = ctl.declare_publisher(keys.log_key(name, node))
            # Zenoh calls back on its own thread: declaring on another session from there could
            # wait for that thread; the change is made on a thread of ours.
            self._listeners.append(pub.declare_matching_listener(zenoh.handlers.Callback(
                functools.partial(self._changed, node), indirect=False)))

    def _changed(self, node: str, _status: Any) -> None:
        threading.Thread(target=self._follow, args=(node,), daemon=True).start()

    @staticmethod
    def _forward(pub: Any, sample: zenoh.Sample) -> None:
        try:
            pub.put(sample.payload)
        except zenoh.ZError:  # the coordinator is closing
            pass

    def _follow(self, node: str) -> None:
        """Subscribe to ``node``'s lines on the network if followed here, else stop."""
        with self._lock:
            if self._closed:
                return
            pub, sub = self._pubs[node], self._subs.get(node)
            followed = pub.matching_status.matching
            try:
                if followed and sub is None:
                    self._subs[node] = self._network.declare_subscriber(
                        keys.log_key(self._name, node),
                        zenoh.handlers.Callback(functools.partial(self._forward, pub), indirect=False))
                elif not followed and sub is not None:
                    del self._subs[node]
                    sub.undeclare()
            except zenoh.ZError:  # a session closing
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            entities = [*self._listeners, *self._subs.values(), *self._pubs.values()]
            self._listeners, self._subs, self._pubs = [], {}, {}
        for entity in entities:
            try:
                entity.undeclare()
            except zenoh.ZError:
                pass
