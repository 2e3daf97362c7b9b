"""A dataflow's log lines on Zenoh, for `start --attach` and `logs -f`, only while followed.

Lines go out only while a subscriber matches (a node printing 10 MB/s cost ~60 % of a core
when every line went onto Zenoh for nobody); a follower that joins late reads the past from
the log file (``logs``), then this. The coordinator casts its own nodes' lines on its
control socket; a daemon of the coordinator's machine casts its nodes' on the same socket,
so `start` shows every node's lines whichever of the two runs it.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

import zenoh

from dora_zenoh.wire import keys


class LineCast:
    """The ``on_line`` hook of one dataflow's run (:class:`~dora_zenoh.supervision.run.RunOptions`)."""

    def __init__(self, session: zenoh.Session, name: str, run_id: str, counts: dict[str, int],
                 nodes: Iterable[str] = ()) -> None:
        self.session, self.name, self.id = session, name, run_id
        self.counts = counts  # the run's lines per node so far: a follower skips those it read from the file
        self._pubs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._closed = False
        # Declared before the nodes start: a publisher declared at a node's first line did not
        # know yet of a follower behind the control socket, and that line never went out.
        for node in nodes:
            self._publisher(node)

    def _publisher(self, node: str) -> Any:
        pub = self._pubs.get(node)
        if pub is None:
            pub = self._pubs[node] = self.session.declare_publisher(keys.log_key(self.name, node))
        return pub

    def __call__(self, node: str, line: str, is_stderr: bool, shown: str | None) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                pub = self._publisher(node)
                if not pub.matching_status.matching:
                    return
                pub.put(json.dumps({"id": self.id, "n": self.counts.get(node, 0), "line": line, "shown": shown,
                                    "stderr": is_stderr}))
            except zenoh.ZError:  # the session is closing: nobody is left to follow
                self._closed = True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pubs, self._pubs = list(self._pubs.values()), {}
        for pub in pubs:
            try:
                pub.undeclare()
            except zenoh.ZError:
                pass
