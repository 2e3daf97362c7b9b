"""Link two peers again when the Zenoh transport between them closed while both still run.

Zenoh 1.10's gossip dials a peer when it first hears of it, and only then. When the one
transport between two nodes on different machines closes while the rest of the network
stays linked (a short outage: a ``BLOCK`` put waited past ``block/wait_before_close``, or
that link's lease ran out while the daemons' links held), both ends drop the other from
their gossip graph and nothing tells them of it again: the data between them stopped for
good (``ss -K`` of that one TCP connection: nothing in 30 s). What makes a peer dial again
is a new link that brings it the other's address. So the end that dialed (it knows the
other's listener) opens a short-lived session to both listeners, which introduces them to
each other; Zenoh then links them (the one whose id ranks first dials), and the data, the
replay of what was missed and the count of what was not, resume.

Only links beyond this machine are watched: loopback links do not go down. The same look at
the links caps TCP's retransmission back-off on each new one (dora_zenoh.wire.backoff), so that
a link that outlived an outage carries data again soon after its return.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import zenoh

from dora_zenoh.console import warn
from dora_zenoh.wire import backoff, zconfig
from dora_zenoh.wire.endpoint import parse

POLL = 0.5  # seconds between looks at the session's links
FIRST_TRY = 0.2  # seconds after a transport closed before the far listener is tried
PROBE_TIMEOUT = 1.0  # seconds a TCP dial of the far listener may take before it counts as unreachable
RETRY_MAX = 0.5  # seconds between tries while the far listener is unreachable
INTRODUCE_WAIT = 1.0  # seconds the introducing session stays open for the two to link (then a new one)


def _backoff_cap() -> backoff.BackoffCap:
    """The cap ``$DORA_ZENOH_TCP_RTO_MAX_MS`` asks, TCP's own after a warning when malformed (a bad
    value must not stop a node)."""
    try:
        return backoff.BackoffCap()
    except ValueError as exc:
        warn(f"{exc}; TCP's own back-off is kept")
        return backoff.BackoffCap(0)


class Relinker:
    """Watches the transports ``session`` dialed to peers on other machines; when one closes,
    introduces the two ends again until they are linked, the far listener is gone (its process
    ended: nothing to link to), or :meth:`close`.

    ``own_listen``: this session's listener with its real port (a ``:0`` one cannot be told
    to the far end); without one, nothing is watched. It polls the session's links every
    POLL seconds on a thread of its own: Zenoh's link and transport event listeners call
    Python from Zenoh's threads, and with them nodes on the one-thread runtime no longer
    acted on ``stop`` (killed at the end of the grace period; measured).
    """

    def __init__(self, session: zenoh.Session, own_listen: str) -> None:
        self._session = session
        self._own = own_listen
        self._own_port = parse(own_listen).stream_port
        self._dialed: dict[str, str] = {}  # peer zid -> its listener (a link this session dialed)
        self._busy: set[str] = set()  # peer zids being re-linked
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.relinked = 0  # how many times a peer was linked again (for tests and logs)
        self.backoff = _backoff_cap()
        if self._own_port:
            self._start(self._watch)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="dora-zenoh-relink")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _linked(self) -> set[str] | None:
        """Peer zids this session has a transport with (None once it is closed)."""
        try:
            return {str(t.zid) for t in self._session.info.transports()}
        except zenoh.ZError:
            return None

    def _watch(self) -> None:
        while not self._closing.wait(POLL):
            try:
                links = self._session.info.links()
            except zenoh.ZError:  # the session closed
                return
            self.backoff.cover(links)
            linked = self._linked()
            if linked is None:
                return
            lost = []
            with self._lock:
                for link in links:
                    src, dst = str(link.src), str(link.dst)
                    if parse(src).stream_port != self._own_port and parse(dst).stream_port is not None \
                            and zconfig.is_network_endpoint(dst):
                        self._dialed[str(link.zid)] = dst  # we dialed it: dst is its listener
                for zid, listener in self._dialed.items():
                    if zid not in linked and zid not in self._busy:
                        self._busy.add(zid)
                        lost.append((zid, listener))
            for zid, listener in lost:
                self._start(self._relink, zid, listener)

    def _relink(self, zid: str, listener: str) -> None:
        try:
            # a peer that ended closes its listener with its transports: refused below
            while not self._closing.wait(FIRST_TRY):
                linked = self._linked()
                if linked is None or zid in linked:
                    return
                tried = time.monotonic()
                reachable = zconfig.dial(listener, PROBE_TIMEOUT)
                if reachable is False:  # refused: nothing listens there any more
                    with self._lock:
                        self._dialed.pop(zid, None)
                    return
                if reachable and self._introduce(zid, listener):
                    self.relinked += 1
                    return
                # (a dial that timed out has waited already: the link's return is not missed by more)
                self._closing.wait(max(0.0, RETRY_MAX - (time.monotonic() - tried)))
        finally:
            with self._lock:
                self._busy.discard(zid)

    def _introduce(self, zid: str, listener: str) -> bool:
        """A session of its own linked to both listeners (no listener, no auto-connect): each end
        learns the other's address from it. True once this session is linked to ``zid`` again."""
        conf = zconfig.peer_config([], [], autoconnect=False)
        conf.insert_json5("connect/endpoints", json.dumps([listener, self._own]))
        try:
            helper = zenoh.open(conf)
        except zenoh.ZError:
            return False
        try:
            deadline = time.monotonic() + INTRODUCE_WAIT
            while not self._closing.wait(0.05):
                linked = self._linked()
                if linked is None or zid in linked:
                    return linked is not None
                if time.monotonic() > deadline:
                    return False
            return False
        finally:
            # its links to a far end that is unreachable again would hold close() for Zenoh's 10 s
            # linger, on this thread and the node's runtime (see backoff)
            with contextlib.suppress(zenoh.ZError):
                backoff.BackoffCap(self.backoff.ms).cover(helper.info.links())
            helper.close()

    def close(self) -> None:
        """Stop re-linking (bounded wait for the threads). Call before closing the session: its
        links made since the last look get their linger off too (see backoff)."""
        self._closing.set()
        if self._own_port:
            try:
                self.backoff.cover(self._session.info.links())
            except zenoh.ZError:
                pass
        deadline = time.monotonic() + PROBE_TIMEOUT + 1
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
