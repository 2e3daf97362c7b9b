"""The sent-count file a killed node leaves its runner, and the endpoint helpers of re-linking."""
from __future__ import annotations

from pathlib import Path

from dora_zenoh.wire import tally, zconfig
from dora_zenoh.wire.endpoint import parse


def test_a_node_s_sent_counts_survive_in_its_file(tmp_path: Path) -> None:
    path = str(tmp_path / "send.0")
    counts = tally.SentTally(path)
    a, b = counts.slot("image"), counts.slot("scan")
    assert a is not None and b is not None and counts.slot("image") == a
    for n in range(1, 1001):
        counts.set(a, n)
    counts.set(b, 7)
    del counts  # the process is gone: what it stored is in the file
    assert tally.read(path) == {"image": 1000, "scan": 7}


def test_the_file_says_whether_the_notice_went_out(tmp_path: Path) -> None:
    """Marked once the node's end-of-stream notice is out (its counts come with it): the runner
    counts a marked file only until that notice comes (supervision.sent; test_sent)."""
    path = str(tmp_path / "send.0")
    counts = tally.SentTally(path)
    counts.set(counts.slot("n"), 5)  # type: ignore[arg-type]
    assert not tally.noticed(path)
    counts.mark_noticed()
    assert tally.noticed(path) and tally.read(path) == {"n": 5}
    assert not tally.noticed(str(tmp_path / "none"))


def test_a_missing_or_foreign_file_reads_as_no_counts(tmp_path: Path) -> None:
    assert tally.read(str(tmp_path / "none")) == {}
    (tmp_path / "junk").write_bytes(b"not json\n" + bytes(100))
    assert tally.read(str(tmp_path / "junk")) == {}


def test_ports_of_endpoints() -> None:
    assert parse("tcp/10.0.0.1:7448").stream_port == 7448
    assert parse("tls/10.0.0.1:7448#iface=eth0").stream_port == 7448
    assert parse("tcp/[fe80::1]:7448") == ("tcp", "fe80::1", 7448) and parse("tcp/[fe80::1]:7448").netloc == "[fe80::1]"
    assert parse("udp/10.0.0.1:7448").stream_port is None and parse("udp/10.0.0.1:7448").port == 7448
    assert parse("unixsock-stream/tmp/x") == ("unixsock-stream", "tmp/x", None)
    assert parse("tcp/[::1]").port is None and parse("tcp/host:port").port is None
    listen = zconfig.with_free_port("tcp/127.0.0.1:0")
    assert listen.startswith("tcp/127.0.0.1:") and parse(listen).stream_port not in (None, 0)
    assert zconfig.with_free_port("tls/127.0.0.1:0").startswith("tls/127.0.0.1:")
    assert zconfig.with_free_port("tcp/127.0.0.1:7448") == "tcp/127.0.0.1:7448"
    assert zconfig.with_free_port("tcp/[::1]:0") == "tcp/[::1]:0"  # left to Zenoh
