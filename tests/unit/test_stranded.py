"""``wire.stranded``: a connection on a session's listener that the session lists among none of
its links is shut down after two looks; the session's own links are left alone.

Zenoh strands a link only in a race (see the module; proven end to end, statistically, by
tests/integration/test_trust.py -k paused_past_its_lease), so here the stranded connection is
a plain TCP client that never does Zenoh's handshake: Zenoh's side of it is an established
socket of this process on the listener that no link lists, as a stranded link's is."""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

import pytest
import zenoh

from dora_zenoh.wire import proc_tcp, stranded, zconfig
from dora_zenoh.wire.endpoint import parse

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sockets are found in /proc/self/fd (Linux)")


@pytest.fixture(autouse=True)
def _plain(monkeypatch):
    for var in ("DORA_ZENOH_ZENOH_CONFIG", "DORA_ZENOH_SECRET_FILE", "DORA_ZENOH_TLS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def linked():
    """A listening session, a session linked to it, and the listener's port."""
    listen = zconfig.free_tcp_endpoint()
    server = zenoh.open(zconfig.peer_config([], [listen]))
    client = zenoh.open(zconfig.peer_config([listen], [], autoconnect=False))
    try:
        assert zconfig.wait_for_peers(client, 5.0)
        yield server, client, parse(listen).stream_port
    finally:
        client.close()
        server.close()


def _seen(session: zenoh.Session, port: int) -> list[tuple[str, int]]:
    """One look: the far addresses of the stranded connections."""
    return [far for _local, far in stranded.stranded(session, port)]


def _raw_client(session: zenoh.Session, port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _seen(session, port):
        time.sleep(0.05)  # Zenoh's accept takes it from the backlog
    return sock


def test_a_connection_no_link_lists_is_shut_down_and_the_links_stay(linked):
    server, client, port = linked
    raw = _raw_client(server, port)
    with raw:
        assert _seen(server, port) == [raw.getsockname()[:2]]
        closed = stranded.close_stranded(server, port, gap=0.2)
        host, port_ = raw.getsockname()[:2]
        assert closed == [f"{host}:{port_}"]
        assert raw.recv(1) == b""  # the far end sees the connection end
    # The real link still carries data both ways
    got = []
    sub = client.declare_subscriber("stranded/test", lambda s: got.append(s.payload.to_bytes()))
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not got:
            server.put("stranded/test", b"still linked")
            time.sleep(0.05)
        assert got and got[0] == b"still linked"
    finally:
        sub.undeclare()
    assert stranded.close_stranded(server, port, gap=0.2) == []


def test_a_connection_stranded_after_a_shutdown_is_shut_down_too(linked):
    """Closing a stranded transport can strand the one its peer opens next (seen once in 60
    runs of the paused reader): the look goes on after each shutdown."""
    server, _client, port = linked
    first = _raw_client(server, port)
    result: list[list[str]] = []
    looker = threading.Thread(target=lambda: result.append(stranded.close_stranded(server, port, gap=0.5)))
    looker.start()
    try:
        with first:
            assert first.recv(1) == b""  # shut down by the first round
        with _raw_client(server, port) as second:  # "dialed again", and stranded again
            assert second.recv(1) == b""
            host, port_ = second.getsockname()[:2]
    finally:
        looker.join(10)
    assert len(result[0]) == 2 and result[0][1] == f"{host}:{port_}", result


def test_a_connection_its_client_closed_is_left_alone(linked):
    server, _client, port = linked
    raw = _raw_client(server, port)
    raw.close()  # Zenoh closes its side: not established any more
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _seen(server, port):
        time.sleep(0.05)
    assert stranded.close_stranded(server, port, gap=0.2) == []


def test_a_socket_of_the_users_own_is_not_touched(linked):
    """Only /proc is read to find the connections: a socket object made on a user's descriptor
    would set it non-blocking under socket.setdefaulttimeout()."""
    server, _client, port = linked
    user = socket.socket()
    user.setblocking(True)
    try:
        socket.setdefaulttimeout(1.0)
        try:
            with _raw_client(server, port):
                stranded.close_stranded(server, port, gap=0.2)
        finally:
            socket.setdefaulttimeout(None)
        assert os.get_blocking(user.fileno())  # the descriptor's own flag, shared with any duplicate
    finally:
        user.close()


def test_locators_name_the_addresses_sockets_give():
    assert proc_tcp.address_of("tcp/127.0.0.1:7447") == ("127.0.0.1", 7447)
    assert proc_tcp.address_of("tls/[::1]:7447#iface=lo") == ("::1", 7447)
    assert proc_tcp.address_of("tcp/[::ffff:127.0.0.1]:80") == ("127.0.0.1", 80)
    assert proc_tcp.address_of("udp/127.0.0.1:7447") is None
    assert proc_tcp.address_of("unixsock-stream//tmp/x") is None


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_connections_are_read_from_proc_for_both_families(family, host):
    """/proc/self/net/tcp and tcp6 print addresses in the host's word order: read back right."""
    with socket.socket(family) as listener:
        try:
            listener.bind((host, 0))
        except OSError:
            pytest.skip(f"no {host} here")
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection((host, port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                found = proc_tcp.connections(port)
                assert list(found.values()) == [((host, port), client.getsockname()[:2])]
                assert list(found) == [accepted.fileno()]
