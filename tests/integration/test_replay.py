"""dora_zenoh.node.replay with real Zenoh sessions: gap, hold, recovery, miss.

Two sessions in this process; the reader reaches the sender through a small TCP relay
that the test unplugs (every connection through it closed, new ones refused) and plugs
back: a link outage that outlasted Zenoh's lease, on loopback, without root. Samples go
through a real :class:`InputQueue` (a block input's queue), which counts what is missing
from the gaps in our sequence numbers.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import zenoh

from dora_zenoh.node import replay
from dora_zenoh.node.inputs import InputQueue, seq_of
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import zconfig

pytestmark = pytest.mark.timeout(120)
KEY = "dora/replaytest/src/out"


class Tokens:
    """What an InputQueue wakes (the node's inbox in a node); here it only counts the wake-ups."""

    def __init__(self) -> None:
        self.count = 0

    def put(self, token: object) -> None:
        self.count += 1


def _session(listen: list[str], connect: list[str]) -> zenoh.Session:
    conf = zenoh.Config()
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/delay", "0")
    conf.insert_json5("listen/endpoints", json.dumps(listen))
    conf.insert_json5("connect/endpoints", json.dumps(connect))
    conf.insert_json5("connect/retry", json.dumps({"period_init_ms": 200, "period_max_ms": 500}))
    return zenoh.open(conf)


class Relay:
    """A TCP relay on loopback (its own thread per direction) that can be unplugged and plugged back."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = int(zconfig.free_tcp_endpoint().rsplit(":", 1)[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self.plug()

    def plug(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 30
        while True:  # the port of the last listener may take a moment to be free again
            try:
                server.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.listen(8)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def unplug(self) -> None:
        """Close the listener and every relayed connection: the link is down until plug()."""
        with self._lock:
            server, self._server = self._server, None
            conns, self._conns = self._conns, []
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
            except OSError:
                pass
            server.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                near, _ = server.accept()
                far = socket.create_connection(self.target, timeout=5)
            except OSError:
                return  # unplugged
            far.settimeout(None)
            with self._lock:
                if self._server is not server:
                    near.close()
                    far.close()
                    return
                self._conns += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Link:
    """A sender session listening on a free loopback port and a reader session linked to it via a Relay."""

    def __init__(self) -> None:
        endpoint = zconfig.free_tcp_endpoint()
        self.sender = _session([endpoint], [])
        self.relay = Relay(int(endpoint.rsplit(":", 1)[1]))
        self.reader = _session([], [f"tcp/127.0.0.1:{self.relay.port}"])

    def close(self) -> None:
        for s in (self.reader, self.sender):
            s.close()
        self.relay.unplug()


@pytest.fixture
def link() -> Iterator[Link]:
    net = Link()
    try:
        yield net
    finally:
        net.close()


def wait_until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _send(pub, first: int, last: int) -> None:
    for seq in range(first, last + 1):
        pub.put(b"x", attachment=wire.attachment(seq, time.time_ns(), None))


def _reader(link: Link, kept: int, monkeypatch, max_bytes: str = "0"
            ) -> tuple[InputQueue, replay.RecoveringSubscriber, object]:
    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", str(kept))
    monkeypatch.setenv("DORA_ZENOH_REPLAY_BYTES", max_bytes)
    q = InputQueue("data", 100000, True, Tokens(), "src", "out")
    sub = replay.RecoveringSubscriber(link.reader, KEY, q.put, "sink", "data", "src/out")
    pub = replay.declare_publisher(link.sender, KEY, congestion_control=zenoh.CongestionControl.BLOCK)
    wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription")
    return q, sub, pub


def _seqs(q: InputQueue) -> list[int]:
    return [seq_of(s) for s in list(q.items)]


def test_a_cut_link_loses_nothing_the_sender_kept(link: Link, monkeypatch) -> None:
    q, sub, pub = _reader(link, 1000, monkeypatch)
    _send(pub, 0, 9)
    wait_until(lambda: len(q.items) == 10, 30, "the first messages")
    link.relay.unplug()
    wait_until(lambda: not pub.matching_status.matching, 30, "the sender to see the reader go")
    _send(pub, 10, 59)  # no link: only the sender's cache has them
    link.relay.plug()
    # ...and nothing more: the reader learns of them from the sender's heartbeat alone.
    wait_until(lambda: len(q.items) >= 60, 60, "the reader to recover the silent tail")
    assert _seqs(q) == list(range(60))
    _send(pub, 60, 69)
    wait_until(lambda: len(q.items) >= 70, 30, "live messages again")
    assert _seqs(q) == list(range(70)) and q.dropped == 0 and sub.missed == 0


@pytest.mark.parametrize("messages, max_bytes", [(20, "0"), (1000, "20")], ids=["messages", "bytes"])
def test_past_the_bound_the_gap_is_counted_and_reported(link: Link, monkeypatch, capfd, messages: int,
                                                        max_bytes: str) -> None:
    # 20 messages kept either way: 20 by count, or 20 bytes of 1-byte messages
    q, sub, pub = _reader(link, messages, monkeypatch, max_bytes)
    _send(pub, 0, 9)
    wait_until(lambda: len(q.items) == 10, 30, "the first messages")
    link.relay.unplug()
    wait_until(lambda: not pub.matching_status.matching, 30, "the sender to see the reader go")
    _send(pub, 10, 109)  # 100 messages while cut off; the sender keeps the last 20
    link.relay.plug()
    assert pub.kept == 20
    wait_until(lambda: len(q.items) > 10, 60, "the reader to recover what the sender kept")
    _send(pub, 110, 119)
    wait_until(lambda: _seqs(q)[-1:] == [119], 30, "live messages again")
    seqs = _seqs(q)
    assert seqs == sorted(set(seqs)) and seqs[:10] == list(range(10)) and seqs[-10:] == list(range(110, 120))
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:], strict=False) if b != a + 1]
    assert len(gaps) == 1 and 80 <= gaps[0][1] - gaps[0][0] - 1 <= 100, gaps  # the last ~20 came back
    missing = gaps[0][1] - gaps[0][0] - 1
    assert sub.missed == missing and q.dropped == missing
    err = capfd.readouterr().err
    assert f"node 'sink': input 'data' lost {missing} message(s) of src/out that its sender no longer kept" in err
