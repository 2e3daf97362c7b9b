"""record/replay/bag argument errors: a clear `error: ...`, exit 1, nothing started (no Zenoh needed)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from dora_zenoh.cli import main

pytest.importorskip("mcap")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def recording(tmp_path):
    from dora_zenoh.record.writer import BagWriter
    from dora_zenoh.wire import codec

    path = tmp_path / "r.mcap"
    w = BagWriter(path, prefix="dora", dataflow="f")
    for i in range(3):
        w.write("dora/f/cam/image", b"img%d" % i, "application/octet-stream", codec.attachment(i, i, {"n": i}), i)
    w.close()
    return path


@pytest.mark.parametrize(("args", "message"), [
    (["record", "cam/image"], "needs the DATAFLOW first"),
    (["record", "flow", "cam/image", "--all"], "either TOPIC names or --all"),
    (["replay", "{rec}", "--replace", "cam"], "--replace needs --dataflow"),
    (["replay", "{rec}", "--rate", "0"], "--rate must be a number above 0, not 0.0"),
    (["replay", "{rec}", "--rate", "nan"], "--rate must be a number above 0, not nan"),  # (nan <= 0 is false: it got through)
    (["replay", "{tmp}/missing.mcap"], "no recording at"),
    (["bag", "cat", "{rec}", "nope/out"], "no topic 'nope/out'"),
    (["bag", "info", "{tmp}/missing.mcap"], "no recording at"),
])
def test_errors_are_clear(tmp_path, args, message):
    rec = recording(tmp_path)
    res = invoke(*[a.format(rec=rec, tmp=tmp_path) for a in args])
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output


def test_replay_replace_names_an_unknown_node(tmp_path):
    rec = recording(tmp_path)
    (tmp_path / "n.py").write_text("")
    yml = tmp_path / "flow.yml"
    yml.write_text("nodes:\n  - id: cam\n    path: n.py\n    outputs: [image]\n")
    res = invoke("replay", str(rec), "--dataflow", str(yml), "--replace", "camera")
    assert res.exit_code == 1 and "--replace camera: no such node" in res.output and "cam" in res.output


def test_bag_cat_and_info(tmp_path):
    rec = recording(tmp_path)
    res = invoke("bag", "cat", str(rec), "cam/image", "-n", "2")
    assert res.exit_code == 0, res.output
    assert res.output.count("---") == 2 and 'params: {"n": 1}' in res.output and "seq: 1" in res.output
    res = invoke("bag", "info", str(rec))
    assert res.exit_code == 0, res.output
    assert "dora/f/cam/image" in res.output and "Messages:     3" in res.output


def test_select_window_topics_and_nodes():
    from dora_zenoh.record.player import select
    from dora_zenoh.record.reader import Recorded

    msgs = [Recorded(f"dora/f/{src}", src, b"", "", None, 0, t * 1_000_000_000, 0)
            for t, src in enumerate(["a/x", "b/y", "a/x", "b/y", "a/z"])]
    assert [m.publish_time // 10**9 for m in select(msgs, start=1, end=3)] == [1, 2, 3]
    assert [m.source for m in select(msgs, topics=["a/x", "dora/f/a/z"])] == ["a/x", "a/x", "a/z"]
    assert [m.source for m in select(msgs, nodes={"b"})] == ["b/y", "b/y"]


def test_run_record_to_an_unwritable_place_fails_before_anything_starts(tmp_path):
    (tmp_path / "n.py").write_text("raise SystemExit('must not start')\n")
    yml = tmp_path / "flow.yml"
    yml.write_text("nodes:\n  - id: n\n    path: n.py\n")
    res = invoke("run", str(yml), "--record", str(tmp_path / "no" / "such" / "dir" / "r.mcap"))
    assert res.exit_code == 1 and "cannot write there" in res.output
    assert not (tmp_path / "out").exists()  # no run was started


@pytest.mark.parametrize("command", [["bag", "info"], ["bag", "cat", "{rec}", "cam/image"], ["replay"]])
def test_a_truncated_recording_is_named_in_one_clear_error(tmp_path, command):
    rec = recording(tmp_path)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(rec.read_bytes()[:-40])
    args = [a.format(rec=cut) for a in command]
    res = invoke(*args[:2], str(cut), *args[3:]) if len(args) > 2 else invoke(*args, str(cut))
    assert res.exit_code == 1, res.output
    assert f"recording {cut} is truncated or damaged" in res.output and "Traceback" not in res.output
