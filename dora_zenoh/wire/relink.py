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

Only links beyond this machine are watched: loopback links do not go down.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import zenoh

from dora_zenoh.wire import zconfig

PROBE_TIMEOUT = 1.0  # seconds a TCP dial of the far listener may take before it counts as unreachable
RETRY_MAX = 1.0  # seconds between tries while the far listener is unreachable (data resumes within this)
INTRODUCE_WAIT = 3.0  # seconds the introducing session stays open for the two to link


def port_of(endpoint: str) -> int | None:
    """The TCP port of ``tcp/HOST:PORT`` or ``tls/HOST:PORT`` (None for anything else)."""
    proto, _, rest = endpoint.partition("/")
    if proto not in ("tcp", "tls") or ":" not in rest:
        return None
    port = rest.rsplit(":", 1)[1].split("#", 1)[0]
    return int(port) if port.isdigit() else None


def _host_port(endpoint: str) -> tuple[str, int]:
    rest = endpoint.partition("/")[2].split("#", 1)[0]
    host, port = rest.rsplit(":", 1)
    return host.strip("[]"), int(port)


class Relinker:
    """Watches the transports ``session`` dialed to peers on other machines; when one closes,
    introduces the two ends again until they are linked, the far listener is gone (its process
    ended: nothing to link to), or :meth:`close`.

    ``own_listen``: this session's listener with its real port (a ``:0`` one cannot be told
    to the far end); without one, nothing is watched.
    """

    def __init__(self, session: zenoh.Session, own_listen: str) -> None:
        self._session = session
        self._own = own_listen
        self._own_port = port_of(own_listen)
        self._dialed: dict[str, str] = {}  # peer zid -> its listener (a link this session dialed)
        self._linked: set[str] = set()  # peer zids with an open transport
        self._busy: set[str] = set()  # peer zids being re-linked
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.entities: list = []  # what calls Python back from Zenoh (undeclared by close)
        self.relinked = 0  # how many times a peer was linked again (for tests and logs)
        if not self._own_port:
            return
        info = session.info
        self.entities.append(info.declare_transport_events_listener(self._on_transport, history=True))
        self.entities.append(info.declare_link_events_listener(self._on_link, history=True))

    def _on_link(self, event: zenoh.LinkEvent) -> None:
        if event.kind != zenoh.SampleKind.PUT:
            return
        link = event.link
        src, dst = str(link.src), str(link.dst)
        if port_of(src) == self._own_port or port_of(dst) is None or not zconfig.is_network_endpoint(dst):
            return  # the far end dialed us (it re-links), or a link on this machine
        with self._lock:
            self._dialed[str(link.zid)] = dst

    def _on_transport(self, event: zenoh.TransportEvent) -> None:
        zid = str(event.transport.zid)
        with self._lock:
            if event.kind == zenoh.SampleKind.PUT:
                self._linked.add(zid)
                return
            self._linked.discard(zid)
            listener = self._dialed.get(zid)
            if listener is None or zid in self._busy or self._closing.is_set():
                return
            self._busy.add(zid)
            thread = threading.Thread(target=self._relink, args=(zid, listener), daemon=True,
                                      name="dora-zenoh-relink")
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _relink(self, zid: str, listener: str) -> None:
        try:
            while not self._closing.is_set() and not self._is_linked(zid):
                reachable = _dial(listener)
                if reachable is False:  # refused: nothing listens there any more
                    with self._lock:
                        self._dialed.pop(zid, None)
                    return
                if reachable and self._introduce(zid, listener):
                    self.relinked += 1
                    return
                self._closing.wait(RETRY_MAX)
        finally:
            with self._lock:
                self._busy.discard(zid)

    def _is_linked(self, zid: str) -> bool:
        with self._lock:
            return zid in self._linked

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
            while time.monotonic() < deadline and not self._closing.is_set():
                if self._is_linked(zid):
                    return True
                time.sleep(0.02)
            return self._is_linked(zid)
        finally:
            helper.close()

    def close(self) -> None:
        """Stop re-linking (bounded wait for the threads) and undeclare the event listeners."""
        self._closing.set()
        for thread in list(self._threads):
            thread.join(PROBE_TIMEOUT + INTRODUCE_WAIT + 1)
        for entity in self.entities:
            try:
                entity.undeclare()
            except zenoh.ZError:
                pass
        self.entities.clear()


def _dial(endpoint: str) -> bool | None:
    """A plain TCP dial of ``endpoint``: True if it answers, False if refused (nothing listens),
    None if unreachable (no answer in time, no route)."""
    try:
        host, port = _host_port(endpoint)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(PROBE_TIMEOUT)
            s.connect((host, port))
        return True
    except ConnectionRefusedError:
        return False
    except (OSError, ValueError):
        return None
