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

Linux only (the connections are found in ``/proc/net/tcp`` and ``/proc/self/fd``); elsewhere
nothing is looked at.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable

import zenoh

from dora_zenoh.wire import proc_tcp

LOOK_GAP = 1.0  # s between the two looks that must both see a socket stranded (a handshake takes ms)
ROUNDS = 5  # looks again after a shutdown (see close_stranded)

Address = proc_tcp.Address


def _listed(session: zenoh.Session) -> tuple[set[tuple[Address | None, Address | None]], bool]:
    """The session's links as (local, far) addresses, and whether every transport it lists has
    a link (False while one is being closed: its links go first, its socket a moment later)."""
    links = list(session.info.links())
    linked = {str(link.zid) for link in links}
    settled = all(str(t.zid) in linked for t in session.info.transports())
    return {(proc_tcp.address_of(link.src), proc_tcp.address_of(link.dst)) for link in links}, settled


def stranded(session: zenoh.Session, port: int) -> dict[tuple[Address, Address], int]:
    """One look: the established connections on local port ``port`` that ``session`` does not
    list among its links (none while a transport of the session is being closed), each with
    its descriptor."""
    listed, settled = _listed(session)
    if not settled:
        return {}
    return {pair: fd for fd, pair in proc_tcp.connections(port).items() if pair not in listed}


def _shut(fd: int, pair: tuple[Address, Address]) -> bool:
    """Shut down the connection on descriptor ``fd`` if it still is ``pair`` (the descriptor may
    have been closed and reused since the look); whether it was."""
    try:
        with proc_tcp.duplicate(fd) as sock:
            if not proc_tcp.same_connection(sock, pair):
                return False
            sock.shutdown(socket.SHUT_RDWR)  # the connection, not just this descriptor
    except OSError:  # it closed meanwhile
        return False
    return True


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
    if not first or not _wait(gap, stop):
        return []
    return [f"{pair[1][0]}:{pair[1][1]}" for pair, fd in stranded(session, port).items()
            if pair in first and _shut(fd, pair)]


def _wait(seconds: float, stop: Callable[[], bool]) -> bool:
    """Sleep ``seconds``, or until ``stop()``; whether the whole time passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stop():
            return False
        time.sleep(min(0.05, seconds))
    return not stop()
