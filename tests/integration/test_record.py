"""Record and replay end to end: real dataflows, real Zenoh sessions, real MCAP files.

The files are checked with the ``mcap`` reader with CRC validation (not our reader), and
the semantic checks compare what a sink saw in a live run and in a replayed one.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cli, start_cli, wait_for

pytest.importorskip("mcap")

from mcap.reader import make_reader  # noqa: E402

PIPELINE = """
    nodes:
      - id: beacon
        path: beacon.py
        outputs: [ping]
      - id: source
        path: source.py
        outputs: [value, label]
      - id: transform
        path: transform.py
        inputs:
          value:
            source: source/value
            queue_size: 1000
        outputs: [out]
      - id: sink
        path: sink.py
        inputs:
          out:
            source: transform/out
            queue_size: 1000
"""
SOURCE = """
    import os, time
    import pyarrow as pa
    from dora import Node
    node = Node()
    n = int(os.environ.get("COUNT", "40"))
    for i in range(n):
        node.send_output("value", pa.array([i, i * i], type=pa.int64()), {"i": i, "parity": i % 2})
        if i % 10 == 0:
            node.send_output("label", f"label {i}")
        time.sleep(0.01)
        if os.environ.get("CRASH_AT") and i == int(os.environ["CRASH_AT"]):
            raise SystemExit(3)
"""
BEACON = """
    from dora import Node
    node = Node()  # nobody reads its output: only `run --record`'s barrier makes it wait
    for i in range(3):
        node.send_output("ping", b"ping %d" % i)
"""
TRANSFORM = """
    from dora import Node
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            a, b = event["value"].to_pylist()
            node.send_output("out", f"{a}:{a + b}", dict(event["metadata"], seen=True))
"""
SINK = """
    import json
    from dora import Node
    node = Node()
    seen, errors = [], []
    for event in node:
        if event["type"] == "INPUT":
            text = bytes(event["value"].to_numpy()).decode()
            a, s = (int(x) for x in text.split(":"))
            if s != a + a * a or event["metadata"].get("i") != a:  # checks every value
                errors.append(text)
            seen.append([text, event["metadata"]])
    json.dump({"seen": seen, "errors": errors}, open("sink.json", "w"), default=str)  # metadata["timestamp"] is a datetime
"""


def write_pipeline(flow) -> None:
    flow.write("dataflow.yml", PIPELINE)
    flow.write("source.py", SOURCE)
    flow.write("beacon.py", BEACON)
    flow.write("transform.py", TRANSFORM)
    flow.write("sink.py", SINK)


def mcap_check(path: Path) -> dict[str, list]:
    """Messages per topic as the ``mcap`` reader sees them, with CRCs validated and the summary read."""
    per_topic: dict[str, list] = {}
    with open(path, "rb") as f:
        reader = make_reader(f, validate_crcs=True)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None, f"{path}: no summary (not closed?)"
        for _, channel, message in reader.iter_messages(log_time_order=False):
            per_topic.setdefault(channel.topic, []).append(message)
        assert summary.statistics.message_count == sum(len(v) for v in per_topic.values())
    return per_topic


def bag_info(path: Path) -> dict:
    res = cli("bag", "info", str(path), "--json")
    assert res.returncode == 0, res.stderr
    return {t["topic"]: t for t in json.loads(res.stdout)["topics"]}


def test_run_record_then_replay_in_place_of_the_source(flow):
    """`run --record` catches every source's first message; replaying with the source replaced
    gives the sink exactly the same values, metadata and order."""
    write_pipeline(flow)
    rec = flow.folder / "rec.mcap"
    res = flow.run("--record", str(rec), "-q")
    assert res.returncode == 0, res.stderr
    live = flow.result("sink.json")
    assert live["errors"] == [] and len(live["seen"]) == 40

    topics = mcap_check(rec)
    key = f"dora/{flow.name}/source/value"
    assert [m.sequence for m in topics[key]] == list(range(40))  # from the very first message
    assert [m.sequence for m in topics[f"dora/{flow.name}/source/label"]] == [0, 1, 2, 3]
    assert [m.data for m in topics[f"dora/{flow.name}/beacon/ping"]] == [b"ping 0", b"ping 1", b"ping 2"]
    assert len(topics[f"dora/{flow.name}/transform/out"]) == 40
    info = bag_info(rec)
    assert info[key]["count"] == 40 and info[key]["gaps"] == 0 and info[key]["dropped"] == 0
    assert info[key]["schema"] == "arrow:int64"

    (flow.folder / "sink.json").unlink()
    res = cli("replay", str(rec), "--dataflow", str(flow.yaml), "--replace", "source", "--name",
              flow.name + "-r", "--endpoint", flow.endpoint, "-q", cwd=flow.folder)
    assert res.returncode == 0, res.stderr
    assert "replayed 44 message(s) on 2 topic(s)" in res.stderr
    replayed = flow.result("sink.json")
    assert replayed == live  # same values, metadata (params) and order


def test_replay_in_place_of_a_source_waits_until_every_node_started(flow):
    """The nodes take their inputs only once every node started (the runner's start gate): the
    player waits for that too. Here a node that loads 8 s holds the start, and the transform
    reads with the default 10-message queue: the replay's 40 messages (0.4 s) filled it before,
    and most were dropped."""
    write_pipeline(flow)
    rec = flow.folder / "rec.mcap"
    assert flow.run("--record", str(rec), "-q").returncode == 0
    live = flow.result("sink.json")
    (flow.folder / "sink.json").unlink()
    flow.write("slow.py", """
        import time
        time.sleep(8)
        from dora import Node
        Node()
    """)
    # the pipeline, with the beacon loading 8 s and the transform's queue at its default (10)
    replay_yaml = flow.write("replay.yml", PIPELINE.replace("path: beacon.py", "path: slow.py").replace(
        "source: source/value\n            queue_size: 1000", "source: source/value"))
    res = cli("replay", str(rec), "--dataflow", str(replay_yaml), "--replace", "source", "--name",
              flow.name + "-r", "--endpoint", flow.endpoint, "-q", cwd=flow.folder)
    assert res.returncode == 0, res.stderr
    assert "dropped" not in res.stderr, res.stderr
    assert flow.result("sink.json") == live


def test_replay_reproduces_bytes_encoding_and_attachment(flow, tmp_path):
    """Onto a running dataflow's keys: a plain Zenoh subscriber receives what was recorded, byte for byte."""
    import zenoh

    from dora_zenoh.record import reader
    from dora_zenoh.wire import zconfig

    write_pipeline(flow)
    rec = flow.folder / "rec.mcap"
    assert flow.run("--record", str(rec), "-q").returncode == 0
    recorded = [m for m in reader.read(rec) if m.source.startswith("source/")]
    got = []
    hub = zconfig.free_tcp_endpoint()
    with zenoh.open(zconfig.peer_config([], [hub])) as session:
        session.declare_subscriber(f"dora/{flow.name}/source/*", lambda s: got.append(
            (str(s.key_expr), s.payload.to_bytes(), str(s.encoding), s.attachment.to_bytes())))
        res = cli("replay", str(rec), "source/value", "source/label", "--endpoint", hub, "--rate", "4")
        assert res.returncode == 0, res.stderr
        wait_for(lambda: len(got) >= len(recorded), 10, "replayed messages")
    assert got == [(m.key, m.payload, m.encoding, m.attachment) for m in recorded]


def test_record_cli_ctrl_c_leaves_a_valid_file(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: ticker
            path: ticker.py
            outputs: [tick]
    """)
    flow.write("ticker.py", """
        from dora import Node
        node = Node()
        i = 0
        while True:
            node.send_output("tick", b"%d" % i)
            i += 1
            if i % 20 == 0:
                open("count.tmp", "w").write(str(i))
                __import__("os").replace("count.tmp", "count")
            event = node.next(timeout=0.005)  # ends at STOP
            if event is None or event["type"] == "STOP":
                break
    """)
    run = flow.start("-q")
    out = flow.folder / "ctrlc.mcap"
    count = flow.folder / "count"
    try:
        wait_for(count.exists, 60, "the ticker")
        rec = start_cli("record", flow.name, "-o", str(out), "--endpoint", flow.endpoint)
        assert "recording" in rec.stderr.readline()
        start = int(count.read_text())
        wait_for(lambda: int(count.read_text()) > start + 200, 60, "more ticks")  # recording meanwhile
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=30)
        assert rec.returncode == 0, err
        assert "(interrupted)" in err
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)
    ticks = mcap_check(out).get(f"dora/{flow.name}/ticker/tick")
    assert ticks, err
    seqs = [m.sequence for m in ticks]
    assert len(seqs) > 10 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # joined midway, no gap
    assert [m.data for m in ticks] == [b"%d" % s for s in seqs]


def test_split_files_and_lz4(flow):
    write_pipeline(flow)
    out = flow.folder / "split.mcap"
    # The recorder first: it waits for the dataflow, then ends with it.
    rec = start_cli("record", flow.name, "source/value", "-o", str(out), "--endpoint", flow.endpoint,
                    "--split-size", "2KiB", "--compression", "lz4")
    run = start_cli("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint, "-q",
                    cwd=flow.folder, env={**os.environ, "COUNT": "150"})
    try:
        _, err = rec.communicate(timeout=60)
        assert rec.returncode == 0, err
        assert "the dataflow ended" in err
    finally:
        run.communicate(timeout=60)
    from dora_zenoh.record.reader import parts as recording_parts

    parts = recording_parts(out)  # split_0, split_1, ... in order
    assert len(parts) == len(list(flow.folder.glob("split_*.mcap")))
    assert len(parts) >= 2 and not out.exists()
    seqs = []
    for part in parts:
        with open(part, "rb") as f:
            summary = make_reader(f, validate_crcs=True).get_summary()
        assert {c.compression for c in summary.chunk_indexes} == {"lz4"}
        seqs += [m.sequence for m in mcap_check(part)[f"dora/{flow.name}/source/value"]]
    assert seqs == list(range(seqs[0], 150))
    info = json.loads(cli("bag", "info", str(out), "--json").stdout)
    assert info["compression"] == "lz4" and len(info["files"]) == len(parts)


def test_recording_of_a_dataflow_whose_node_crashes(flow):
    write_pipeline(flow)
    rec = flow.folder / "crash.mcap"
    res = flow.run("--record", str(rec), "-q", env={**os.environ, "CRASH_AT": "14"})
    assert res.returncode == 1
    info = bag_info(rec)
    value = info[f"dora/{flow.name}/source/value"]
    assert value["count"] == 15 and value["gaps"] == 0  # every message the source sent before it crashed
    assert len(mcap_check(rec)[f"dora/{flow.name}/transform/out"]) == 15


def test_truncated_file_is_a_clear_error(flow, tmp_path):
    write_pipeline(flow)
    rec = flow.folder / "rec.mcap"
    assert flow.run("--record", str(rec), "-q").returncode == 0
    cut = tmp_path / "cut.mcap"
    data = rec.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    res = cli("replay", str(cut), "--dataflow", str(flow.yaml), "--replace", "source", "--endpoint", flow.endpoint)
    assert res.returncode == 1
    assert "truncated or damaged" in res.stderr and str(cut) in res.stderr
    assert "Traceback" not in res.stderr
    assert not (flow.folder / "out").exists() or len(list((flow.folder / "out").iterdir())) == 1  # nothing started


def test_full_buffer_drops_are_counted_and_written(tmp_path):
    """Past its buffer the recorder drops (never blocks the sender), counts per topic, and says so
    at the end and in the file."""
    import zenoh

    from dora_zenoh.record.recorder import open_recorder
    from dora_zenoh.wire import codec, zconfig

    hub = zconfig.free_tcp_endpoint()
    path = tmp_path / "drops.mcap"
    with zenoh.open(zconfig.peer_config([], [hub])) as session:
        # BLOCK, as a node's publisher to a block reader: the default (DROP) may lose a message
        # on a loaded machine, and this test counts them
        block = zenoh.CongestionControl.BLOCK
        pub = session.declare_publisher("dora/dropflow/big/out", congestion_control=block)
        rec = open_recorder(path, endpoint=hub, prefix="dora", dataflow="dropflow", topics=None, buffer_bytes=100)
        wait_for(lambda: pub.matching_status.matching, 10, "the recorder's subscription")
        # #0 and #51 fit in the buffer and are recorded; #1-#50 do not: a gap of 50 in the file
        pub.put(b"x", attachment=codec.attachment(0, time.time_ns(), None))
        wait_for(lambda: rec.writer.counts.get("dora/dropflow/big/out"), 30, "#0 written")  # (frees the buffer)
        for i in range(1, 51):
            pub.put(b"x" * 100, attachment=codec.attachment(i, time.time_ns(), None))
        pub.put(b"x", attachment=codec.attachment(51, time.time_ns(), None))
        wait_for(lambda: rec.writer.counts.get("dora/dropflow/big/out") == 2, 30, "#51 written")
        small = session.declare_publisher("dora/dropflow/small/out", congestion_control=block)
        small.put(b"ok", attachment=codec.attachment(0, time.time_ns(), None))
        wait_for(lambda: rec.drops.get("dora/dropflow/big/out") == 50 and rec.writer.counts.get("dora/dropflow/small/out"),
                 30, "the 50 drops and the small message")
        rec.stop("test")
        result = rec.run()
    assert result.drops == {"dora/dropflow/big/out": 50}
    assert "DROPPED 50" in result.summary()
    # the drops are the seq gap #1-#50: not also messages that never reached the recorder
    assert result.unseen == {} and "never reached" not in result.summary(), result.summary()
    info = bag_info(path)
    assert info["dora/dropflow/big/out"]["dropped"] == 50 and info["dora/dropflow/big/out"]["count"] == 2
    assert info["dora/dropflow/big/out"]["gaps"] == 50
    assert info["dora/dropflow/small/out"]["count"] == 1
    res = cli("bag", "info", str(path))
    assert "warning: 50 message(s) missing" in res.stderr, res.stderr  # (each drop was counted twice: 100)


def synthetic_recording(path: Path, count: int = 20, period_ns: int = 50_000_000) -> None:
    from dora_zenoh.record.writer import BagWriter
    from dora_zenoh.wire import codec

    w = BagWriter(path, prefix="dora", dataflow="syn")
    t0 = time.time_ns()
    for i in range(count):
        ts = t0 + i * period_ns
        w.write("dora/syn/cam/image", b"frame %d" % i, "application/octet-stream", codec.attachment(i, ts, None), ts)
    w.close()


def test_replay_window_and_loop(tmp_path):
    import zenoh

    from dora_zenoh.wire import zconfig

    rec = tmp_path / "syn.mcap"
    synthetic_recording(rec)  # 20 frames, 50 ms apart
    hub = zconfig.free_tcp_endpoint()
    got: list[bytes] = []
    with zenoh.open(zconfig.peer_config([], [hub])) as session:
        session.declare_subscriber("dora/syn/**", lambda s: got.append(s.payload.to_bytes()))
        res = cli("replay", str(rec), "--endpoint", hub, "--start", "0.2s", "--end", "0.5s")
        assert res.returncode == 0, res.stderr
        wait_for(lambda: len(got) >= 7, 10, "the window's frames")
        time.sleep(0.3)
        assert got == [b"frame %d" % i for i in range(4, 11)]  # 0.2 s to 0.5 s, both included

        got.clear()
        # It hung after Ctrl-C in 1 CI run and 1 of 60 runs four at a time: its handler's Event.set
        # waited for the lock its own Event.wait held (dora_zenoh.signals). Should it hang again,
        # PYTHONFAULTHANDLER and SIGABRT print every thread's stack into the failure.
        player = start_cli("replay", str(rec), "--endpoint", hub, "--loop", "--rate", "10",
                           env={**os.environ, "PYTHONFAULTHANDLER": "1"})
        wait_for(lambda: len(got) >= 45, 60, "more than two rounds")
        player.send_signal(signal.SIGINT)
        try:
            _, err = player.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            player.send_signal(signal.SIGABRT)
            _, err = player.communicate(timeout=30)
            raise AssertionError(f"replay --loop did not end within 30 s of SIGINT; its stacks:\n{err}") from None
    assert player.returncode == 0, err
    assert "(interrupted)" in err
    assert got[:40] == [b"frame %d" % i for i in range(20)] * 2


def test_start_record_on_the_coordinator(flow, coord):
    """`start --record`: the coordinator's dataflow is recorded from every source's first message."""
    write_pipeline(flow)
    rec = flow.folder / "coord.mcap"
    res = coord("start", str(flow.yaml), "--name", flow.name, "--record", str(rec), cwd=flow.folder)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: coord.status(flow.name) in ("succeeded", "failed"), 60, "the dataflow's end")
    assert coord.status(flow.name) == "succeeded"
    wait_for(lambda: rec.exists() and rec.read_bytes()[-8:] == b"\x89MCAP0\r\n", 30, "the recording's end")
    topics = mcap_check(rec)
    assert [m.sequence for m in topics[f"dora/{flow.name}/source/value"]] == list(range(40))
    assert [m.data for m in topics[f"dora/{flow.name}/beacon/ping"]] == [b"ping 0", b"ping 1", b"ping 2"]


def test_replay_onto_a_closed_dataflow_of_the_coordinator_reaches_its_node(flow, coord):
    """A coordinator's dataflow is closed by default: `replay FILE --name NAME` published on the
    coordinator's network, where none of its nodes reads ("no subscriber yet; playing anyway")."""
    from dora_zenoh.record.writer import BagWriter
    from dora_zenoh.wire import codec

    flow.write("dataflow.yml", """
        nodes:
          - id: source
            path: dynamic
            outputs: [value]
          - id: sink
            path: sink.py
            inputs: {value: source/value}
    """)
    flow.write("sink.py", """
        from dora import Node
        for event in Node():
            if event["type"] == "INPUT":
                with open("got.txt", "a") as f:
                    f.write(bytes(event["value"].to_numpy()).decode() + "\\n")
    """)
    rec = flow.folder / "replay-me.mcap"
    writer = BagWriter(rec, prefix="dora", dataflow="recorded")
    t0 = time.time_ns()
    for i in range(20):
        writer.write("dora/recorded/source/value", b"frame %d" % i, "application/octet-stream",
                     codec.attachment(i, t0 + i * 10_000_000, None), t0 + i * 10_000_000)
    writer.close()
    res = coord("start", str(flow.yaml), "--name", flow.name, "--detach", cwd=flow.folder)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: coord.status(flow.name) == "running", 60, "the dataflow")
    res = coord("replay", str(rec), "--name", flow.name, cwd=flow.folder)
    assert res.returncode == 0 and "no subscriber" not in res.stderr, res.stderr
    got = flow.folder / "got.txt"
    wait_for(lambda: got.exists() and len(got.read_text().splitlines()) >= 20, 30, "the replayed frames at the sink")
    assert got.read_text().splitlines() == [f"frame {i}" for i in range(20)]
    coord("stop", flow.name)


def test_record_everything_for_a_duration(tmp_path):
    """Without a DATAFLOW: every key under the prefix, until --duration; a plain publisher's messages too."""
    import zenoh

    from dora_zenoh.wire import zconfig

    hub = zconfig.free_tcp_endpoint()
    out = tmp_path / "all.mcap"
    with zenoh.open(zconfig.peer_config([], [hub])) as session:
        rec = start_cli("record", "-o", str(out), "--endpoint", hub, "--duration", "5s")
        assert "every dataflow under 'dora/'" in rec.stderr.readline()
        pub = session.declare_publisher("dora/any/thing/out", congestion_control=zenoh.CongestionControl.BLOCK)
        wait_for(lambda: pub.matching_status.matching, 20, "the recorder's subscription")
        for i in range(5):
            pub.put(b"plain %d" % i)  # no attachment: a plain Zenoh publisher
        _, err = rec.communicate(timeout=30)
    assert rec.returncode == 0, err
    assert "(duration reached)" in err
    from dora_zenoh.record import reader

    got = list(reader.read(out))
    assert [(m.key, m.payload, m.attachment) for m in got] == [("dora/any/thing/out", b"plain %d" % i, None)
                                                              for i in range(5)]


def test_run_secure_record(flow):
    """A closed run (--secure): the recorder gets the run's credentials, joins the barrier and records."""
    write_pipeline(flow)
    rec = flow.folder / "secure.mcap"
    res = flow.run("--record", str(rec), "--secure", "-q")
    assert res.returncode == 0, res.stderr
    topics = mcap_check(rec)
    assert [m.sequence for m in topics[f"dora/{flow.name}/source/value"]] == list(range(40))
    assert len(topics[f"dora/{flow.name}/beacon/ping"]) == 3
