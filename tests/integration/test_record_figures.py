"""The recorder and the player tell their own figures, and the recorder acks end-of-stream notices.

No timing assertions: these check that the figures exist and add up (counts, what never
arrived), and that a sender's "is my end-of-stream notice there?" query gets the answer.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli, wait_for

pytest.importorskip("mcap")

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def test_recorder_acks_end_of_stream_and_names_what_never_arrived(tmp_path):
    """A ``run --record`` recorder acknowledges a sender's end-of-stream notice with its session id (a sender waited 1 s for an answer that never came, then closed with
    messages in flight); at the end it counts the messages sent that never reached it (a seq gap,
    and the tail the notice announces) apart from its own drops, and writes its figures."""
    import zenoh

    from dora_zenoh.record import mapping, reader
    from dora_zenoh.record.recorder import RECORDER_ID, open_recorder
    from dora_zenoh.wire import codec, keys, zconfig

    hub = zconfig.free_tcp_endpoint()
    path = tmp_path / "acks.mcap"
    key = "dora/ackflow/cam/image"
    with zenoh.open(zconfig.peer_config([], [hub])) as session:
        pub = session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK)
        rec = open_recorder(path, endpoint=hub, prefix="dora", dataflow="ackflow", topics=None,
                            reader_id=RECORDER_ID)
        wait_for(lambda: pub.matching_status.matching, 20, "the recorder's subscription")
        for seq in (0, 1, 3):  # seq 2 never sent: a gap the recorder did not cause
            pub.put(b"frame %d" % seq, attachment=codec.attachment(seq, time.time_ns(), None))
        notice = {"node": "cam", "outputs": {"image": 5}, "ended": time.time(), "zid": "z-test"}
        answers: list = []
        acks = session.declare_subscriber(keys.ack_key("dora", "ackflow", "cam", RECORDER_ID),
                                          lambda sample: answers.append(json.loads(sample.payload.to_bytes())))

        def acked() -> bool:
            # sent again each round: the recorder's notice subscriber may reach this session after
            # its data subscriber did (what the wait above waited for); a repeat changes nothing
            session.put(keys.eos_key("dora", "ackflow", "cam"), json.dumps(notice).encode())
            time.sleep(0.2)
            return {"zid": "z-test"} in answers

        wait_for(acked, 30, "the recorder's ack of the end-of-stream notice")
        acks.undeclare()
        wait_for(lambda: rec.writer.counts.get(key) == 3, 30, "the three messages")
        rec.stop("test")
        result = rec.run()
    assert result.drops == {}
    assert result.unseen == {key: 2}  # seq 2, and seq 4 (the notice says 5 were sent)
    summary = result.summary()
    assert "2 message(s) their senders sent never reached the recorder" in summary
    assert result.stats is not None and result.stats.messages == 3
    assert "[dora-zenoh] recorder: 3 message(s)" in summary
    figures = reader.metadata(path)[mapping.META_STATS]
    assert figures["messages"] == "3" and figures["payload_bytes"] == str(3 * len(b"frame 0"))
    assert float(figures["process_cpu_s"]) > 0


def test_a_recorder_attached_to_a_running_dataflow_counts_from_its_first_message(tmp_path):
    """`dora-zenoh record` started while the dataflow runs: the messages sent before it came are
    not lost (its summary called 59 a second of a 30 Hz camera so), a gap after its first one is."""
    import zenoh

    from dora_zenoh.record.recorder import open_recorder
    from dora_zenoh.wire import codec, keys, zconfig

    hub = zconfig.free_tcp_endpoint()
    key = "dora/lateflow/cam/image"
    with zenoh.open(zconfig.peer_config([], [hub])) as session:
        pub = session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK)
        rec = open_recorder(tmp_path / "late.mcap", endpoint=hub, prefix="dora", dataflow="lateflow", topics=None)
        wait_for(lambda: pub.matching_status.matching, 20, "the recorder's subscription")
        for seq in (40, 41, 43):  # 0-39 were sent before the recorder came; 42 never was
            pub.put(b"frame %d" % seq, attachment=codec.attachment(seq, time.time_ns(), None))
        wait_for(lambda: rec.writer.counts.get(key) == 3, 30, "the three messages")
        notice = {"node": "cam", "outputs": {"image": 45}, "ended": time.time(), "zid": "z-late"}
        session.put(keys.eos_key("dora", "lateflow", "cam"), json.dumps(notice).encode())
        wait_for(lambda: rec.sent.get(key) == 45, 30, "the end-of-stream notice")
        rec.stop("test")
        result = rec.run()
    assert result.unseen == {key: 2}, result.summary()  # seq 42, and seq 44 (the notice says 45)
    assert "2 message(s) their senders sent never reached the recorder" in result.summary()


def synthetic_recording(path: Path, count: int, period_ns: int) -> None:
    from dora_zenoh.record.writer import BagWriter
    from dora_zenoh.wire import codec

    w = BagWriter(path, prefix="dora", dataflow="syn")
    t0 = time.time_ns()
    for i in range(count):
        ts = t0 + i * period_ns
        w.write("dora/syn/cam/image", b"frame %d" % i, "application/octet-stream", codec.attachment(i, ts, None), ts)
    w.close()


def test_replay_stats_and_realtime(tmp_path):
    """`replay --stats` prints the timing distribution over every message; `--realtime` either
    gets SCHED_FIFO or says why not, and plays either way."""
    from dora_zenoh.wire import zconfig

    rec = tmp_path / "syn.mcap"
    synthetic_recording(rec, 20, 5_000_000)
    res = cli("replay", str(rec), "--endpoint", zconfig.free_tcp_endpoint(), "--stats", "--realtime")
    assert res.returncode == 0, res.stderr
    assert "replayed 20 message(s) on 1 topic(s)" in res.stderr
    assert "replay timing over 20 message(s)" in res.stderr and "p99.9" in res.stderr
    assert "priority: SCHED_FIFO" in res.stderr or "SCHED_FIFO refused" in res.stderr


@pytest.mark.timeout(240)
def test_bench_record_case_reports_the_recorders_figures(tmp_path):
    """scripts/bench.py --cases record: the writer alone, then a recorded run with the recorder's
    CPU and the replay timing, and every message accounted for. (Not "none lost": a sender
    publishes to a `run --record` recorder with congestion control DROP, docs/record-replay.md,
    Known gap, so a recorder descheduled on a loaded CI machine may miss some, counted.)"""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--cases", "record", "--record-runs", "8:300:1",
                           "--writer-runs", "8:2000", "--repeat", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(w["size"], w["compression"]) for w in report["record_writer"]] == [(8, "zstd"), (8, "lz4"), (8, "none")]
    assert all(w["msg_s"] > 0 for w in report["record_writer"])
    (run,) = report["record"]["8:300:1"]
    assert run["sent"] == 300 and run["recorded"] + run["gaps"] == 300, run  # gaps: drops and losses
    assert run["lost_before"] == run["gaps"] - run["dropped"]
    assert run["rec_cpu_s"] > 0 and run["writer_msg_s"] > 0
    assert {"replay_p50_us", "replay_p99_us", "replay_max_us"} <= set(run), run.get("replay_error")
    assert "the MCAP writer alone" in proc.stdout and "lost before" in proc.stdout
