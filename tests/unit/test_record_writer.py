"""The recorder's fast message path writes exactly what mcap's own ``add_message`` writes."""
from __future__ import annotations

import pytest

pytest.importorskip("mcap")


def write(path, fast: bool, compression: str) -> None:
    from dora_zenoh.record.writer import BagWriter
    from dora_zenoh.wire import codec

    # a small chunk size: many chunks, each with its message indexes; three channels (one Arrow,
    # one with metadata, so an attachment channel too), log times out of order
    w = BagWriter(path, prefix="dora", dataflow="f", compression=compression, chunk_size=4096, fast=fast)
    arrow = bytes.fromhex("ffffffff10000000") + b"\0" * 16 + b"batch"
    for i in range(3000):
        t = 5 if i == 5 else 1_000_000 + i * 1000 - (500 if i % 7 == 0 else 0)  # i=5: before the first
        w.write("dora/f/cam/image", b"img%d" % i * (i % 50), "application/octet-stream",
                codec.attachment(i, t, None), t, i)
        if i % 3 == 0:
            w.write("dora/f/imu/acc", b"acc", "application/octet-stream", codec.attachment(i, t, {"n": i}), t + 1, i)
        if i % 5 == 0:
            w.write("dora/f/arr/out", arrow, "application/vnd.apache.arrow.stream", None, t + 2, i)
    w.close({"dora/f/cam/image": 2}, {"dora/f/cam/image": 3001})


def records(path):
    from mcap.records import Metadata
    from mcap.stream_reader import StreamReader

    from dora_zenoh.record import mapping

    with open(path, "rb") as f:
        # the recording's metadata holds its start time, which differs between the two files
        return [r for r in StreamReader(f, skip_magic=False).records
                if not (isinstance(r, Metadata) and r.name == mapping.META_RECORDING)]


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_fast_path_writes_what_mcap_writes(tmp_path, compression):
    from dora_zenoh.record.writer import BagWriter, _MessageAdder

    probe = BagWriter(tmp_path / "probe.mcap", prefix="dora", dataflow="f")
    assert _MessageAdder(probe._writer).add != probe._writer.add_message, "the fast path is not in use"
    probe.close()
    write(tmp_path / "fast.mcap", True, compression)
    write(tmp_path / "slow.mcap", False, compression)
    fast, slow = records(tmp_path / "fast.mcap"), records(tmp_path / "slow.mcap")
    assert len(fast) > 100
    assert fast == slow
