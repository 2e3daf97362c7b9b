"""The MCAP mapping: what the writer puts in a file comes back byte for byte, and the file is
valid for the ``mcap`` reader with CRC checks (not only for our reader)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("mcap")
pa = pytest.importorskip("pyarrow")

from mcap.reader import make_reader  # noqa: E402

from dora_zenoh.record import mapping as m  # noqa: E402
from dora_zenoh.record import reader  # noqa: E402
from dora_zenoh.record.writer import BagWriter, RecordError, arrow_schema_message  # noqa: E402
from dora_zenoh.wire import codec  # noqa: E402


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"seq":3,"ts":17}', (3, 17, True)),
    (b'{"seq":3,"ts":17,"params":{"a":1}}', (3, 17, False)),
    (b'{"seq":4294967296,"ts":1}', (4294967296, 1, False)),  # beyond MCAP's uint32 sequence
    (b'{"seq": 3, "ts": 17}', (None, None, False)),            # another sender's spacing
    (b"not json", (None, None, False)),
    (None, (None, None, False)),
])
def test_seq_ts(raw, expected):
    assert m.seq_ts(raw) == expected


def messages():
    arrow, _ = codec.encode(pa.array([1.5, 2.5]))
    strings, _ = codec.encode(pa.array(["a", "b"]))
    return [
        ("dora/f/cam/image", b"\x00\x01raw", m.ENC_BYTES, codec.attachment(0, 100, None)),
        ("dora/f/cam/image", b"\x02", m.ENC_BYTES, codec.attachment(1, 200, {"w": 2, "h": [1, 2]})),
        ("dora/f/talk/text", "héllo".encode(), m.ENC_TEXT, codec.attachment(0, 150, None)),
        ("dora/f/imu/acc", arrow, m.ENC_ARROW, codec.attachment(0, 160, None)),
        ("dora/f/imu/names", strings, m.ENC_ARROW, codec.attachment(0, 170, None)),
        ("dora/f/ext/plain", b"from a plain zenoh publisher", m.ENC_BYTES, None),
        ("dora/f/ext/odd", b"x", "zenoh/bytes;custom", b"\xff\x00 not json"),
        ("dora/f/cam/image", b"", m.ENC_BYTES, b'{"seq":4294967296,"ts":300}'),
    ]


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_round_trip_and_independent_reader(tmp_path, compression):
    path = tmp_path / "r.mcap"
    w = BagWriter(path, prefix="dora", dataflow="f", compression=compression, foxglove_json=True)
    for n, (key, payload, enc, att) in enumerate(messages()):
        w.write(key, payload, enc, att, 1000 + n)
    w.close({"dora/f/cam/image": 7})

    back = list(reader.read(path))
    assert [(r.key, r.payload, r.encoding, r.attachment) for r in back] == messages()
    assert back[0].source == "cam/image" and back[1].publish_time == 200
    assert reader.params_of(back[1]) == {"w": 2, "h": [1, 2]}
    assert reader.drops(path) == {"dora/f/cam/image": 7}

    with open(path, "rb") as f:  # the mcap library's own view, CRCs checked
        r = make_reader(f, validate_crcs=True)
        summary = r.get_summary()
        schemas = {s.id: s for s in summary.schemas.values()}
        by_topic = {}
        for schema, channel, message in r.iter_messages(log_time_order=False):
            by_topic.setdefault(channel.topic, []).append((schema, channel, message))
    assert {c.compression or "none" for c in summary.chunk_indexes} == {compression if compression != "none" else "none"}
    schema, channel, _ = by_topic["dora/f/imu/acc"][0]
    assert channel.message_encoding == m.ENC_ARROW and schema.encoding == m.SCHEMA_ARROW
    assert schema.name == "arrow:double"
    assert pa.ipc.read_schema(pa.py_buffer(schema.data)).field(0).type == pa.float64()
    assert schemas[channel.schema_id].data == arrow_schema_message(messages()[3][1])
    assert by_topic["dora/f/cam/image"][0][1].metadata[m.CH_SOURCE] == "cam/image"
    # Foxglove's JSON channel for Arrow data with an obvious JSON form
    assert json.loads(by_topic["dora/f/imu/acc/@json"][0][2].data) == {"value": [1.5, 2.5]}
    assert json.loads(by_topic["dora/f/imu/names/@json"][0][2].data) == {"value": ["a", "b"]}
    # canonical attachments are implied, only the others are stored
    assert len(by_topic["dora/f/cam/image/@attachment"]) == 2
    assert [msg.sequence for _, _, msg in by_topic["dora/f/cam/image"]] == [0, 1, 0]


def test_damaged_files_are_a_record_error(tmp_path):
    path = tmp_path / "r.mcap"
    w = BagWriter(path, prefix="dora", dataflow="f")
    for n, (key, payload, enc, att) in enumerate(messages() * 50):
        w.write(key, payload, enc, att, 1000 + n)
    w.close()
    data = path.read_bytes()
    for name, broken in [("cut", data[: len(data) // 2]), ("tail", data[:-4]), ("empty", b""),
                         ("garbage", b"hello world" * 10)]:
        bad = tmp_path / f"{name}.mcap"
        bad.write_bytes(broken)
        with pytest.raises(RecordError, match="truncated or damaged"):
            list(reader.read(bad))
    with pytest.raises(RecordError, match="no recording"):
        list(reader.read(tmp_path / "missing.mcap"))


def test_split_by_duration(tmp_path):
    path = tmp_path / "s.mcap"
    w = BagWriter(path, prefix="dora", dataflow="f", split_duration=1.0)
    for n in range(30):
        w.write("dora/f/a/b", b"%d" % n, m.ENC_BYTES, codec.attachment(n, n, None), n * 100_000_000)
    paths = w.close()
    assert [p.name for p in paths] == ["s_0.mcap", "s_1.mcap", "s_2.mcap"]
    assert [r.payload for r in reader.read(path)] == [b"%d" % n for n in range(30)]


def test_bag_info_counts_gaps_missing_end_restarts_and_drops(tmp_path):
    from dora_zenoh.record.info import bag_info

    path = tmp_path / "i.mcap"
    w = BagWriter(path, prefix="dora", dataflow="f", compression="lz4")
    seqs = [0, 1, 3, 4, 0, 1, 2]  # seq 2 missing, then the sender restarted
    for n, seq in enumerate(seqs):
        w.write("dora/f/a/out", b"x" * 10, m.ENC_BYTES, codec.attachment(seq, n * 100_000_000, None), n * 100_000_000)
    w.close({"dora/f/a/out": 3, "dora/f/b/out": 9}, {"dora/f/a/out": 5})
    info = bag_info(path)
    a, b = info.topics
    assert (a.topic, a.count, a.gaps, a.restarts, a.dropped, a.sent, a.missing_end) == \
        ("dora/f/a/out", 7, 1, 1, 3, 5, 2)
    assert (b.topic, b.count, b.dropped) == ("dora/f/b/out", 0, 9)  # every message of it dropped
    assert info.compression == "lz4" and info.messages == 7
    assert info.duration == pytest.approx(0.6) and a.rate == pytest.approx(10.0)


def _mcap_js() -> str | None:
    """Where Foxglove's TypeScript MCAP reader is installed (``npm install --prefix DIR @mcap/core
    @mcap/support``): $MCAP_JS_NODE_PATH, else ~/.cache/dora-zenoh/mcap-js/node_modules."""
    import os
    import shutil
    from pathlib import Path

    if not shutil.which("node"):
        return None
    for where in (os.environ.get("MCAP_JS_NODE_PATH"), Path.home() / ".cache/dora-zenoh/mcap-js/node_modules"):
        if where and (Path(where) / "@mcap" / "core").is_dir() and (Path(where) / "@mcap" / "support").is_dir():
            return str(where)
    return None


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_a_second_mcap_implementation_reads_our_files(tmp_path, compression):
    """Foxglove's own TypeScript reader (what the Foxglove app uses) checks CRCs, reads the index and
    finds every message on the channels and schemas we wrote."""
    import subprocess
    from pathlib import Path

    node_path = _mcap_js()
    if node_path is None:
        pytest.skip("node and @mcap/core are not installed: npm install --prefix ~/.cache/dora-zenoh/mcap-js "
                    "@mcap/core @mcap/support")
    path = tmp_path / "js.mcap"
    w = BagWriter(path, prefix="dora", dataflow="f", compression=compression, foxglove_json=True, chunk_size=256)
    for n, (key, payload, enc, att) in enumerate(messages() * 20):
        w.write(key, payload, enc, att, 1000 + n)
    w.close()
    script = Path(__file__).resolve().parents[2] / "scripts" / "mcap_verify.mjs"
    res = subprocess.run(["node", str(script), str(path)], capture_output=True, text=True, timeout=60,
                         env={"NODE_PATH": node_path, "PATH": __import__("os").environ["PATH"]})
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen["profile"] == "dora-zenoh"
    assert seen["compression"] == [compression if compression != "none" else "none"]
    topics = seen["topics"]
    assert topics["dora/f/cam/image"]["sequences"] == [0, 1, 0] * 20
    assert topics["dora/f/imu/acc"]["schemaName"] == "arrow:double"
    assert topics["dora/f/imu/acc"]["schemaEncoding"] == m.SCHEMA_ARROW
    assert topics["dora/f/imu/acc/@json"]["encoding"] == "json"
    assert topics["dora/f/talk/text"]["encoding"] == m.ENC_TEXT
    total = sum(len(t["sequences"]) for t in topics.values())
    assert seen["indexedCount"] == seen["statsCount"] == total
    with open(path, "rb") as f:
        assert total == sum(1 for _ in make_reader(f, validate_crcs=True).iter_messages())
