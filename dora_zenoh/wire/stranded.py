"""Close a link that Zenoh keeps open but no longer sends on (a fault of Zenoh 1.10).

Why: when a ``BLOCK`` put gives up on a reader that stopped reading
(``block/wait_before_close``), Zenoh closes that transport twice, about a millisecond apart
(the put's close, then its send task's failure on the socket that close shut), and each
close ends by removing *that peer's* entry from the session's table of transports. A
transport the same peer opened in between (a reader paused past its lease dials back as
soon as it runs) is the one the second close removes: its link stays open and keeps its
lease, the peer sees nothing wrong, and this session never sends it anything again (its
routes point at a transport no table holds). zenoh-python cannot close one link, so this
module finds the socket: an established TCP connection on this session's listener that the
session lists among none of its links, seen so on two looks a second apart, while every
transport the session lists has a link (one being closed has none for a while, its socket
still open: left alone). Shutting that socket down makes both ends drop the link, and the
reader dials again (measured: docs/guarantees.md, Slow and stalled readers).

Linux only (the sockets are found in ``/proc/self/fd``); elsewhere nothing is looked at.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import suppress

import zenoh

LOOK_GAP = 1.0  # s between the two looks that must both see a socket stranded (a handshake takes ms)
ROUNDS = 5  # looks again after a shutdown (see close_stranded)
_FDS = "/proc/self/fd"
_ESTABLISHED = 1  # tcp_info.tcpi_state (linux/tcp_states.h)

Address = tuple[str, int]


def _address(host: str, port: int) -> Address:
    """``(host, port)`` with the host in one spelling (an IPv4-mapped IPv6 address as IPv4)."""
    with suppress(ValueError):
        ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        host = ip.compressed
    return host, port


def locator_address(locator: object) -> Address | None:
    """The address of a Zenoh TCP/TLS locator (``tcp/127.0.0.1:7447``, ``tls/[::1]:7447#…``)."""
    proto, _, rest = str(locator).partition("/")
    host, sep, port = rest.split("#", 1)[0].split("?", 1)[0].rpartition(":")
    if proto not in ("tcp", "tls") or not sep or not port.isdigit():
        return None
    return _address(host, int(port))


def _listed(session: zenoh.Session) -> tuple[set[tuple[Address | None, Address | None]], bool]:
    """The session's links as (local, far) addresses, and whether every transport it lists has
    a link (False while one is being closed: its links go first, its socket a moment later)."""
    links = list(session.info.links())
    linked = {str(link.zid) for link in links}
    settled = all(str(t.zid) in linked for t in session.info.transports())
    return {(locator_address(link.src), locator_address(link.dst)) for link in links}, settled


def _connections(port: int) -> Iterator[tuple[socket.socket, Address, Address]]:
    """This process's established TCP connections whose local port is ``port``, each as a
    socket on a duplicate of its descriptor (the caller closes it) and its two addresses."""
    try:
        names = os.listdir(_FDS)
    except OSError:  # not Linux
        return
    for name in names:
        try:
            if not os.readlink(f"{_FDS}/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):  # closed meanwhile, or not a socket we can open
            continue
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                local, far = sock.getsockname(), sock.getpeername()
                state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
                if local[1] == port and state == _ESTABLISHED:
                    yield sock, _address(*local[:2]), _address(*far[:2])
                    continue
        except OSError:  # a listener, or not connected
            pass
        sock.close()


def stranded(session: zenoh.Session, port: int) -> dict[tuple[Address, Address], socket.socket]:
    """One look: the established connections on local port ``port`` that ``session`` does not
    list among its links (empty while a transport of the session is being closed)."""
    found: dict[tuple[Address, Address], socket.socket] = {}
    listed, settled = _listed(session)
    for sock, local, far in _connections(port):
        if settled and (local, far) not in listed:
            found[(local, far)] = sock
        else:
            sock.close()
    return found


def close_stranded(session: zenoh.Session, port: int, gap: float = LOOK_GAP,
                   stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Shut down each connection that two looks ``gap`` s apart both found stranded (see the
    module docstring), the first ``gap`` s from now (the close that strands a link can come a
    moment after its peer's token did: a look at once missed it, 1 run in 90), and look again
    after each shutdown, ROUNDS times at most: the close of the stranded transport can strand the
    one its peer opened next the same way (1 run in 60); ``far_host:far_port`` of each.
    ``stop``: give up between looks."""
    closed: list[str] = []
    for _ in range(ROUNDS):
        shut = _round(session, port, gap, stop) if _wait(gap, stop) else []
        closed += shut
        if not shut:
            break
    return closed


def _round(session: zenoh.Session, port: int, gap: float, stop: Callable[[], bool]) -> list[str]:
    first = stranded(session, port)
    for sock in first.values():
        sock.close()
    if not first or not _wait(gap, stop):
        return []
    shut = []
    for pair, sock in stranded(session, port).items():
        with sock:
            if pair in first:
                with suppress(OSError):  # it closed meanwhile
                    sock.shutdown(socket.SHUT_RDWR)  # the connection, not just this descriptor
                    shut.append(f"{pair[1][0]}:{pair[1][1]}")
    return shut


def _wait(seconds: float, stop: Callable[[], bool]) -> bool:
    """Sleep ``seconds``, or until ``stop()``; whether the whole time passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stop():
            return False
        time.sleep(min(0.05, seconds))
    return not stop()
