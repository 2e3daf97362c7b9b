"""dora_zenoh.node.replay with real Zenoh sessions: gap, hold, recovery, miss.

Two sessions in this process; the reader reaches the sender through a small TCP relay
that the test unplugs (every connection through it closed, new ones refused) and plugs
back: a link outage that outlasted Zenoh's lease, on loopback, without root. Samples go
through a real :class:`InputQueue` (a block input's queue), which counts what is missing
from the gaps in our sequence numbers.
"""
from __future__ import annotations

import functools
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import zenoh
import zenoh.ext as zext

from dora_zenoh.node import replay
from dora_zenoh.node.fifo import FifoInput
from dora_zenoh.node.inbox import DOZE_AFTER, Inbox
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


class Reader:
    """The reader's block input, fed as a node feeds it: by the advanced subscriber's callback, or
    from the FIFO channel it fills (dora_zenoh.node.fifo), which ``seqs`` drains as the node's
    thread would."""

    def __init__(self, link: Link, path: str) -> None:
        self.q = InputQueue("data", 100000, True, Tokens(), "src", "out")
        declare = functools.partial(replay.RecoveringSubscriber, link.reader, KEY, node="sink", input_id="data",
                                    source="src/out")
        self.fifo = FifoInput(link.reader, KEY, self.q, declare=lambda ch: self._keep(declare(ch))) \
            if path == "fifo" else None
        if self.fifo is None:
            self.sub = declare(self.q.put)

    def _keep(self, sub: replay.RecoveringSubscriber) -> replay.RecoveringSubscriber:
        self.sub = sub
        return sub

    def seqs(self) -> list[int]:
        if self.fifo is not None:
            while self.fifo.poll():
                pass
        return [seq_of(s) for s in list(self.q.items)]


@pytest.fixture(params=["callback", "fifo"])
def path(request) -> str:
    return request.param


def _reader(link: Link, kept: int, monkeypatch, path: str, max_bytes: str = "0") -> tuple[Reader, object]:
    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", str(kept))
    monkeypatch.setenv("DORA_ZENOH_REPLAY_BYTES", max_bytes)
    r = Reader(link, path)
    pub = replay.declare_publisher(link.sender, KEY, congestion_control=zenoh.CongestionControl.BLOCK)
    wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription")
    return r, pub


def test_a_cut_link_loses_nothing_the_sender_kept(link: Link, monkeypatch, path: str) -> None:
    r, pub = _reader(link, 1000, monkeypatch, path)
    _send(pub, 0, 9)
    wait_until(lambda: len(r.seqs()) == 10, 30, "the first messages")
    link.relay.unplug()
    wait_until(lambda: not pub.matching_status.matching, 30, "the sender to see the reader go")
    _send(pub, 10, 59)  # no link: only the sender's cache has them
    link.relay.plug()
    # ...and nothing more: the reader learns of them from the sender's heartbeat alone.
    wait_until(lambda: len(r.seqs()) >= 60, 60, "the reader to recover the silent tail")
    assert r.seqs() == list(range(60))
    _send(pub, 60, 69)
    wait_until(lambda: len(r.seqs()) >= 70, 30, "live messages again")
    assert r.seqs() == list(range(70)) and r.q.dropped == 0 and r.sub.missed == 0


@pytest.mark.parametrize("messages, max_bytes", [(20, "0"), (1000, "20")], ids=["messages", "bytes"])
def test_past_the_bound_the_gap_is_counted_and_reported(link: Link, monkeypatch, capfd, messages: int,
                                                        max_bytes: str, path: str) -> None:
    # 20 messages kept either way: 20 by count, or 20 bytes of 1-byte messages
    r, pub = _reader(link, messages, monkeypatch, path, max_bytes)
    _send(pub, 0, 9)
    wait_until(lambda: len(r.seqs()) == 10, 30, "the first messages")
    link.relay.unplug()
    wait_until(lambda: not pub.matching_status.matching, 30, "the sender to see the reader go")
    _send(pub, 10, 109)  # 100 messages while cut off; the sender keeps the last 20
    link.relay.plug()
    assert pub.kept == 20
    wait_until(lambda: len(r.seqs()) > 10, 60, "the reader to recover what the sender kept")
    _send(pub, 110, 119)
    wait_until(lambda: r.seqs()[-1:] == [119], 30, "live messages again")
    seqs = r.seqs()
    assert seqs == sorted(set(seqs)) and seqs[:10] == list(range(10)) and seqs[-10:] == list(range(110, 120))
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:], strict=False) if b != a + 1]
    assert len(gaps) == 1 and 80 <= gaps[0][1] - gaps[0][0] - 1 <= 100, gaps  # the last ~20 came back
    missing = gaps[0][1] - gaps[0][0] - 1
    assert r.sub.missed == missing and r.q.dropped == missing
    err = capfd.readouterr().err
    assert f"node 'sink': input 'data' lost {missing} message(s) of src/out that its sender no longer kept" in err


def test_larger_messages_shrink_the_cache_to_the_bytes_bound(link: Link, monkeypatch, path: str) -> None:
    """Zenoh's cache counts messages; the bytes bound was applied to the first message only, so
    an output whose first message was small kept 256 large ones (1 GiB of 4 MiB messages, and
    every send 4x slower). Now a larger message declares the cache again with fewer messages,
    and the reader still gets every message, in order."""
    r, pub = _reader(link, 1000, monkeypatch, path, max_bytes="1000")
    seq = 0
    for size, kept in ((1, 1000), (100, 10), (500, 2), (10, 2)):
        for _ in range(10):
            pub.put(b"x" * size, attachment=wire.attachment(seq, time.time_ns(), None))
            seq += 1
        assert pub.kept == kept
    wait_until(lambda: len(r.seqs()) == seq, 30, "every message")
    assert r.seqs() == list(range(seq)) and r.q.dropped == 0 and r.sub.missed == 0
    # What the sender keeps now, as a reader that joins late fetches it: within 1000 bytes.
    got: queue.Queue = queue.Queue()
    late = zext.declare_advanced_subscriber(link.reader, KEY, lambda s: got.put(len(s.payload)),
                                            history=zext.HistoryConfig())
    try:
        wait_until(lambda: got.qsize() >= 2, 30, "the late reader's history")
        time.sleep(0.5)  # anything more the history would bring
        sizes = [got.get_nowait() for _ in range(got.qsize())]
    finally:
        late.undeclare()
    assert sizes == [10, 10], sizes


@pytest.mark.parametrize("fifos", [1, 2], ids=["one-fifo-dozing", "two-fifos"])
def test_what_recovery_fetches_wakes_a_node_asleep_in_its_ring(link: Link, monkeypatch, fifos: int) -> None:
    """A node's thread asleep in its ring (one FIFO input after DOZE_AFTER, or two FIFO inputs)
    must still take what Zenoh's recovery puts in a recovering FIFO: those samples ring no bell,
    and once the FIFO is full, Zenoh's thread waits for room before it calls any bell. Before,
    the node never woke: data never resumed after a 10 s outage (1 run in 6 over the emulated
    link). Here: a queue of 2 (a FIFO of 3), 100 messages sent while the link is down, none after."""
    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", "1000")
    monkeypatch.setenv("DORA_ZENOH_REPLAY_BYTES", "0")
    inbox = Inbox(link.reader, "dora/replaytest/@dz/ring", 64, None)
    q = InputQueue("data", 2, True, inbox, "src", "out")
    fifo = FifoInput(link.reader, KEY, q, declare=functools.partial(
        replay.RecoveringSubscriber, link.reader, KEY, node="sink", input_id="data", source="src/out"))
    inbox.add_fifo(fifo)
    if fifos == 2:  # a second block input, whose source never sends
        inbox.add_fifo(FifoInput(link.reader, KEY + "2", InputQueue("other", 2, True, inbox, "src", "out2")))
    pub = replay.declare_publisher(link.sender, KEY, congestion_control=zenoh.CongestionControl.BLOCK)
    wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription")
    seqs: list[int] = []

    def node_thread() -> None:  # what Node.__next__ does with what the inbox gives
        while len(seqs) < 105:
            try:
                token = inbox.get()  # no timeout: its alarm would wake the thread
            except queue.Empty:  # the session closed
                return
            if token is q:
                seqs.append(seq_of(q.take()))
            elif token.__class__ is zenoh.Sample:  # a lone FIFO's message, handed out at once
                seqs.append(seq_of(token))

    reader = threading.Thread(target=node_thread, daemon=True)
    reader.start()
    try:
        _send(pub, 0, 4)
        wait_until(lambda: len(seqs) == 5, 30, "the first messages")
        time.sleep(DOZE_AFTER + 0.5)  # a wait that long dozes in the ring (a lone plain FIFO's would)
        link.relay.unplug()
        wait_until(lambda: not pub.matching_status.matching, 30, "the sender to see the reader go")
        _send(pub, 5, 104)  # no link: only the sender's cache has them
        link.relay.plug()
        wait_until(lambda: len(seqs) == 105, 30, "the node to take what recovery fetched")
        assert seqs == list(range(105))
    finally:
        for _ in range(200):  # on failure: room in the FIFO lets Zenoh's thread go, so the close can end
            fifo.poll()
        inbox.close()
        reader.join(5)


class PlainWithRepair:
    """A FIFO reader's subscriber without Zenoh's recovery, with the repair a recovering one has:
    every gap the cut link leaves reaches the reader as one Zenoh's recovery gave up on does."""

    def __init__(self, session: zenoh.Session, channel: object) -> None:
        self._sub = session.declare_subscriber(KEY, channel)
        self.try_recv, self.recv, self.undeclare = self._sub.try_recv, self._sub.recv, self._sub.undeclare
        self.repair = replay.CacheRepair(session, KEY, "sink", "data", "src/out")


def _outage_of_50(link: Link, monkeypatch, kept: int, size: int, live_wanted: int) -> tuple[list[int], FifoInput]:
    """A block reader without Zenoh's recovery (PlainWithRepair) and a sender keeping ``kept``
    messages: 10 messages, the link cut, 50 sent meanwhile, the link back, 20 live ones (the first
    of them comes after the gap). The sequence numbers the reader's queue got once it holds
    ``live_wanted``, and its FIFO input (its repair's counts)."""
    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", str(kept))
    monkeypatch.setenv("DORA_ZENOH_REPLAY_BYTES", "0")
    q = InputQueue("data", size, True, Tokens(), "src", "out")
    fifo = FifoInput(link.reader, KEY, q, declare=lambda ch: PlainWithRepair(link.reader, ch))
    pub = replay.declare_publisher(link.sender, KEY, congestion_control=zenoh.CongestionControl.BLOCK)
    wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription")

    def seqs() -> list[int]:
        while fifo.poll():
            pass
        return [seq_of(s) for s in list(q.items)]

    try:
        _send(pub, 0, 9)
        wait_until(lambda: len(seqs()) == 10, 30, "the first messages")
        link.relay.unplug()
        wait_until(lambda: not pub.matching_status.matching, 30, "the sender to see the reader go")
        _send(pub, 10, 59)  # no link: only the sender's cache has them (as far as it keeps them)
        link.relay.plug()
        wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription again")
        _send(pub, 60, 79)  # live: the first of them comes after a gap of 50
        wait_until(lambda: len(seqs()) >= live_wanted, 60, f"{live_wanted} messages")
    finally:
        for _ in range(200):  # on failure: room in the FIFO lets Zenoh's thread go, so the close can end
            fifo.poll()
        fifo.release()
    return seqs(), fifo


@pytest.mark.parametrize("size", [100000, 2], ids=["roomy", "full-fifo"])
def test_a_gap_recovery_gave_up_on_is_fetched_again_from_the_cache(link: Link, monkeypatch, capfd,
                                                                    size: int) -> None:
    """Zenoh's recovery can declare missed what the sender's cache still holds (once in CI, after
    a 10 s outage); the reader asks the cache for the gap before it counts it. With a FIFO of 3,
    the live messages after the gap fill it, and the Zenoh thread that brings the cache's answer
    waits for room: the reader must take them meanwhile, or the answer never comes."""
    got, fifo = _outage_of_50(link, monkeypatch, kept=1000, size=size, live_wanted=80)
    assert got == list(range(80)) and fifo.queue.dropped == 0
    assert fifo.repair.recovered == 50 and fifo.repair.lost == 0
    err = capfd.readouterr().err
    assert "input 'data' got 50 message(s) of src/out again from its sender's replay cache" in err
    assert "lost" not in err


def test_a_gap_longer_than_the_cache_is_counted_without_waiting_for_it(link: Link, monkeypatch, capfd) -> None:
    """The sender keeps 5 messages, fewer than the 50 sent while the link was down. The first
    live message shows the gap, and by the time the reader asks the cache for it, the 19 sent
    after it have pushed it out too: the range asked gets no answer, as when there is no route
    to the cache yet. It used to ask again and again for REPAIR_PATIENCE (3 s, ~30 queries, the
    input held meanwhile: data came back 3.2-3.7 s after every long outage, a helper's runs); now
    the cache's newest message answers a probe, one more ask confirms, and the 50 count at once."""
    got, fifo = _outage_of_50(link, monkeypatch, kept=5, size=100000, live_wanted=30)
    assert got == list(range(10)) + list(range(60, 80))
    assert fifo.repair.lost == 50 and fifo.repair.recovered == 0
    assert fifo.repair.queries <= 3, fifo.repair.queries  # the gap, the probe, the gap again
    assert "lost 50 message(s) of src/out that its sender no longer kept" in capfd.readouterr().err


def test_a_notice_from_another_machine_is_acknowledged_once_its_messages_are_taken(tmp_path, monkeypatch) -> None:
    """A reader on another machine acknowledged its source's end-of-stream notice as it came, so
    the source ended, and its replay cache with it, while the reader was still recovering what
    it sent during an outage: the last messages were lost (the emulated-link test, stopped right
    after an outage). Now such a reader acknowledges once its input took every message the
    notice counts. Here the test's session is the source on the other machine; the reader's
    two messages wait in its FIFO until the test lets it read: no acknowledgement before."""
    from dora_zenoh.wire import keys
    from dora_zenoh.wire.contract import InputConfig, NodeConfig

    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", "1000")
    endpoint = zconfig.free_tcp_endpoint()
    source = _session([endpoint], [])
    key = "dora/acklate/tx/out"
    cfg = NodeConfig("acklate", "rx", "dora", endpoint, supervised=False, inputs={"in": InputConfig(
        queue_size=1, queue_policy="block", key=key, source_node="tx", source_output="out", restartable=True,
        recover=True)})
    (tmp_path / "rx.py").write_text(
        "import os, time\n"
        "from dora_zenoh import Node\n"
        "node = Node()\n"
        "open('up', 'w').write('')\n"
        "while not os.path.exists('go'):\n"
        "    time.sleep(0.01)\n"
        "taken = 0\n"
        "for event in node:\n"
        "    taken += event['type'] == 'INPUT'\n"
        "    if event['type'] == 'STOP' or taken == 2:\n"
        "        break\n"
        "open('took', 'w').write(str(taken))\n")
    acks: queue.Queue = queue.Queue()
    ack_sub = source.declare_subscriber(keys.ack_key("dora", "acklate", "tx", "rx"),
                                        lambda s: acks.put(s.payload.to_bytes()))
    env = {**os.environ, "DORA_ZENOH_NODE_CONFIG": cfg.to_json()}
    proc = subprocess.Popen([sys.executable, "rx.py"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (tmp_path / "up").exists() or proc.poll() is not None, 60, "the reader")
        assert proc.poll() is None, proc.communicate()[1]
        pub = replay.declare_publisher(source, key, congestion_control=zenoh.CongestionControl.BLOCK)
        wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription")
        _send(pub, 0, 1)  # both fit in the reader's FIFO: the link goes on, and the notice arrives
        notice = {"node": "tx", "outputs": {"out": 2}, "zid": str(source.zid())}
        source.put(keys.eos_key("dora", "acklate", "tx"), json.dumps(notice).encode())
        with pytest.raises(queue.Empty):
            acks.get(timeout=1.5)  # (the old code acknowledged within milliseconds)
        (tmp_path / "go").write_text("")
        payload = acks.get(timeout=30)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        ack_sub.undeclare()
        source.close()
    assert (tmp_path / "took").read_text() == "2", err
    assert json.loads(payload) == {"zid": str(source.zid())}


def test_a_reader_that_closes_while_recovery_fills_its_fifo_does_not_hang(link: Link, monkeypatch) -> None:
    """Zenoh's thread that flushes what recovery fetched into a full FIFO waits for room while
    it holds the advanced subscriber's lock, and undeclaring that subscriber waits for the
    lock: a reader that stopped during such a burst hung in its close until it was killed (the
    emulated-link test). ``release`` now empties the FIFO while the subscriber goes."""
    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", "1000")
    monkeypatch.setenv("DORA_ZENOH_REPLAY_BYTES", "0")
    q = InputQueue("data", 2, True, Tokens(), "src", "out")
    fifo = FifoInput(link.reader, KEY, q, declare=functools.partial(
        replay.RecoveringSubscriber, link.reader, KEY, node="sink", input_id="data", source="src/out"))
    pub = replay.declare_publisher(link.sender, KEY, congestion_control=zenoh.CongestionControl.BLOCK)
    wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription")
    _send(pub, 0, 1)
    wait_until(lambda: fifo.poll() or len(q.items) >= 2, 30, "the first messages")
    link.relay.unplug()
    wait_until(lambda: not pub.matching_status.matching, 30, "the sender to see the reader go")
    _send(pub, 2, 201)  # only the sender's cache has them; recovery brings 200 to a FIFO of 3
    link.relay.plug()
    wait_until(lambda: pub.matching_status.matching, 30, "the reader's subscription again")
    time.sleep(1.0)  # the recovery's answer arrives: the FIFO is full, its flush waits for room
    closing = threading.Thread(target=fifo.release, daemon=True)
    closing.start()
    closing.join(30)
    assert not closing.is_alive(), "release() hung"
