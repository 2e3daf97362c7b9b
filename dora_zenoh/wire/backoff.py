"""Cap TCP's retransmission back-off on a session's links to other machines, and close them
without Zenoh's 10 s linger.

While a link is down, TCP doubles the wait between retransmissions (0.2, 0.4, ... 6.4 s
after 10 s, up to 120 s). A connection that outlives an outage (Zenoh's 10 s lease did
not end it) sends nothing after the link's return until its next retransmission: data
resumed 3.9-10 s after a 10 s outage (docs/machines.md). Linux 6.15 lets a socket cap that
wait (``TCP_RTO_MAX_MS``); Zenoh neither sets it nor hands its sockets out, so the process
finds them among its own file descriptors: the TCP sockets whose two addresses are those
of one of the session's links beyond this machine, as the kernel lists them
(:mod:`dora_zenoh.wire.proc_tcp`: before 5 Dec a socket object was made on every descriptor to
read its addresses, which set a user's blocking socket non-blocking under
``socket.setdefaulttimeout()``). Loopback links and the user's own sockets are left alone. Without the option (another OS, an older kernel), nothing is done.

The same sockets get ``SO_LINGER`` off. Zenoh 1.10 gives every TCP link a 10 s linger (not
configurable), so closing a link to an unreachable machine with bytes unsent blocks ``close``
for up to 10 s, on whichever Zenoh thread closes it: on a node's one-thread runtime that froze
all its other links, local ones included (a partition stopped a local reader's data for 7.5 s
from 7.5 s into it: docs/machines.md). Without linger the kernel still sends what is left, in
the background, as for any closed TCP socket.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable
from typing import Any

from dora_zenoh import settings
from dora_zenoh.wire import proc_tcp, zconfig

TCP_RTO_MAX_MS = getattr(socket, "TCP_RTO_MAX_MS", 44)  # linux/tcp.h since 6.15; Python names it later
_NO_LINGER = struct.pack("ii", 0, 0)  # struct linger {l_onoff = 0, l_linger = 0}: close() returns at once

Address = proc_tcp.Address


class BackoffCap:
    """Caps the back-off of every TCP socket of this process that carries one of the links given
    to :meth:`cover`, and turns its linger off, once each. ``ms``: the cap
    (``$DORA_ZENOH_TCP_RTO_MAX_MS``; 0 leaves TCP's own). ``capped`` / ``unlingered`` count the
    sockets done (tests and logs look); ``beyond_only=False`` covers loopback links too (for
    tests without a second machine)."""

    def __init__(self, ms: int | None = None, beyond_only: bool = True) -> None:
        self.ms = settings.TCP_RTO_MAX_MS.get() if ms is None else ms
        self.beyond_only = beyond_only
        self.capped = self.unlingered = 0
        self._done: set[tuple[str, str]] = set()  # (src, dst) of the links done: not parsed again
        self.no_cap = self.ms <= 0  # (or the kernel has no TCP_RTO_MAX_MS: found at the first socket)
        self.off = not os.path.isdir(proc_tcp.FDS)

    def cover(self, links: Iterable[Any]) -> None:
        """Cap the sockets of the ``links`` (Zenoh's ``session.info.links()``) beyond this machine
        that are not capped yet; cheap when there are none (no look at the descriptors)."""
        if self.off:
            return
        wanted: dict[tuple[Address, Address], tuple[str, str]] = {}  # their two addresses -> the link
        for link in links:
            key = str(link.src), str(link.dst)
            if key in self._done or not (zconfig.is_network_endpoint(key[1]) or not self.beyond_only):
                continue
            own, peer = proc_tcp.address_of(key[0]), proc_tcp.address_of(key[1])
            if own is not None and peer is not None:
                wanted[own, peer] = key
        if wanted:
            self._cap(wanted)

    def _cap(self, wanted: dict[tuple[Address, Address], tuple[str, str]]) -> None:
        # (connected ones only: a dial in progress is looked at again when its link is listed)
        for fd, pair in proc_tcp.connections().items():
            if pair in wanted and self._set(fd, pair):
                self._done.add(wanted[pair])

    def _set(self, fd: int, pair: tuple[Address, Address]) -> bool:
        try:
            with proc_tcp.duplicate(fd) as sock:
                if not proc_tcp.same_connection(sock, pair):
                    return False
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
                self.unlingered += 1
                if not self.no_cap:
                    try:
                        sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, self.ms)
                        self.capped += 1
                    except OSError as exc:
                        if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL):
                            raise
                        self.no_cap = True  # a kernel before 6.15, or a cap it refuses
        except OSError:  # closed meanwhile
            return False
        return True


def supported() -> bool:
    """Whether this kernel has the cap (Linux 6.15 or later)."""
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, 1000)
    except OSError:
        return False
    return True
