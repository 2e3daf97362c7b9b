"""dora_zenoh.wire.backoff with real Zenoh sessions: the cap (and linger off) lands on the session's link sockets only.

Two sessions in this process linked over loopback (``beyond_only=False``: no second machine
needed), and a TCP connection of "the user's" own beside them. Every socket of the Zenoh link
gets ``TCP_RTO_MAX_MS``; the user's keep TCP's default. Skips on a kernel without the option.
"""
from __future__ import annotations

import os
import socket
import struct
import time
import types

import pytest
import zenoh

from dora_zenoh.wire import backoff, proc_tcp, zconfig

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not backoff.supported(), reason="the kernel has no TCP_RTO_MAX_MS (Linux 6.15 or later)"),
]


def _rto_max(fd: int) -> int:
    with socket.socket(fileno=os.dup(fd)) as sock:
        return sock.getsockopt(socket.IPPROTO_TCP, backoff.TCP_RTO_MAX_MS)


def _linger(fd: int) -> tuple[int, int]:
    with socket.socket(fileno=os.dup(fd)) as sock:
        return struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))


def _tcp_fds(port: int) -> list[int]:
    """This process's TCP sockets with ``port`` at either end."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            with socket.socket(fileno=os.dup(int(name))) as sock:
                if sock.type == socket.SOCK_STREAM and port in (sock.getsockname()[1], sock.getpeername()[1]):
                    found.append(int(name))
        except OSError:
            continue
    return found


def test_the_cap_lands_on_the_links_sockets_and_nowhere_else() -> None:
    endpoint = zconfig.free_tcp_endpoint()
    port = int(endpoint.rsplit(":", 1)[1])
    listener = socket.create_server(("127.0.0.1", 0))  # the user's own connection, in the same process
    user = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    a = zenoh.open(zconfig.peer_config([], [endpoint]))
    b = zenoh.open(zconfig.peer_config([endpoint], []))
    try:
        deadline = time.monotonic() + 20
        # both ends of the link (this process holds both sessions), and both sessions know it
        while len(_tcp_fds(port)) < 2 or not list(a.info.links()) or not list(b.info.links()):
            assert time.monotonic() < deadline, "the two sessions did not link"
            time.sleep(0.05)
        default = _rto_max(user.fileno())
        assert default > 1000  # TCP's own (120 s)
        assert [_linger(fd) for fd in _tcp_fds(port)] == [(1, 10), (1, 10)]  # Zenoh's 10 s linger

        far_only = backoff.BackoffCap(1000)  # the product's setting: links beyond this machine only
        far_only.cover(b.info.links())
        assert far_only.capped == 0 and all(_rto_max(fd) == default for fd in _tcp_fds(port))

        cap = backoff.BackoffCap(1500, beyond_only=False)
        cap.cover(a.info.links())
        cap.cover(b.info.links())
        assert cap.capped == 2 and cap.unlingered == 2
        assert [_rto_max(fd) for fd in _tcp_fds(port)] == [1500, 1500]
        assert [_linger(fd)[0] for fd in _tcp_fds(port)] == [0, 0]  # l_onoff 0: close() no longer waits
        assert _rto_max(user.fileno()) == default and _rto_max(accepted.fileno()) == default
        assert _linger(user.fileno()) == (0, 0) == _linger(accepted.fileno())  # (never set: untouched)
        cap.cover(b.info.links())  # once each
        assert cap.capped == 2
        # the session still works: the cap touched a duplicate's socket, not Zenoh's descriptor
        got = []
        sub = a.declare_subscriber("backoff/test", zenoh.handlers.Callback(lambda s: got.append(s)))
        deadline = time.monotonic() + 20
        while not got:
            assert time.monotonic() < deadline, "no message after the cap"
            b.put("backoff/test", b"x")
            time.sleep(0.05)
        sub.undeclare()
    finally:
        b.close()
        a.close()
        for sock in (user, accepted, listener):
            sock.close()


@pytest.mark.parametrize("endpoint, expected", [
    ("tcp/10.1.2.3:7447", ("10.1.2.3", 7447)),
    ("tls/[fe80::1%veth0]:7447#iface=veth0", ("fe80::1", 7447)),
    ("tcp/[::ffff:10.0.0.1]:80", ("10.0.0.1", 80)),
    ("tcp/robot.local:7447", None),
    ("udp/10.1.2.3:7447", None),
])
def test_addresses_of_endpoints(endpoint: str, expected: tuple[str, int] | None) -> None:
    got = proc_tcp.address_of(endpoint)
    assert (None if got is None else (str(got[0]), got[1])) == expected


def test_a_socket_still_dialing_at_one_look_is_capped_once_it_carries_a_link() -> None:
    """A link dialed during an outage: its socket exists, not connected yet (SYN_SENT), when a look
    at the descriptors happens; it once stayed "not a TCP link" for good, so the link it became kept
    TCP's back-off and Zenoh's 10 s linger (a 14 s outage of data after a 10 s one)."""
    endpoint = zconfig.free_tcp_endpoint()
    listener = socket.create_server(("127.0.0.1", 0))
    dialing = socket.socket()
    dialing.bind(("127.0.0.1", 0))  # a descriptor with an address, no peer yet
    a = zenoh.open(zconfig.peer_config([], [endpoint]))
    b = zenoh.open(zconfig.peer_config([endpoint], []))
    accepted = None
    try:
        deadline = time.monotonic() + 20
        while not list(a.info.links()):
            assert time.monotonic() < deadline, "the two sessions did not link"
            time.sleep(0.05)
        cap = backoff.BackoffCap(1500, beyond_only=False)
        cap.cover(a.info.links())  # a look at every descriptor: `dialing` among them, unconnected
        assert cap.capped == 1
        dialing.connect(listener.getsockname())
        accepted, _ = listener.accept()
        own, peer = dialing.getsockname(), dialing.getpeername()
        # the link the dial became, as session.info.links() names it (src, dst)
        link = types.SimpleNamespace(src=f"tcp/{own[0]}:{own[1]}", dst=f"tcp/{peer[0]}:{peer[1]}")
        cap.cover([link])
        assert cap.capped == 2 and _rto_max(dialing.fileno()) == 1500
        assert _linger(dialing.fileno())[0] == 0
    finally:
        b.close()
        a.close()
        for sock in (dialing, listener, accepted):
            if sock is not None:
                sock.close()


def test_a_users_blocking_socket_stays_blocking() -> None:
    """The cap looked up every descriptor's addresses through a socket object made on it, which,
    under ``socket.setdefaulttimeout()``, set the user's blocking socket non-blocking (the flag
    belongs to the file description every duplicate shares; 5 Dec). The addresses now come from
    /proc (dora_zenoh.wire.proc_tcp); only the link's own socket is duplicated."""
    endpoint = zconfig.free_tcp_endpoint()
    listener = socket.create_server(("127.0.0.1", 0))
    user = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    user.setblocking(True)
    a = zenoh.open(zconfig.peer_config([], [endpoint]))
    b = zenoh.open(zconfig.peer_config([endpoint], []))
    try:
        deadline = time.monotonic() + 20
        while not list(a.info.links()):
            assert time.monotonic() < deadline, "the two sessions did not link"
            time.sleep(0.05)
        socket.setdefaulttimeout(5.0)
        try:
            cap = backoff.BackoffCap(1500, beyond_only=False)
            cap.cover(a.info.links())
        finally:
            socket.setdefaulttimeout(None)
        assert cap.unlingered == 1  # it did act, on the link's socket
        assert os.get_blocking(user.fileno()) and os.get_blocking(accepted.fileno())
    finally:
        b.close()
        a.close()
        for sock in (user, accepted, listener):
            sock.close()
