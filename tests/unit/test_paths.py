"""Dataflow names, run ids and the directories of runs (dora_zenoh.supervision.paths), on the real filesystem."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dora_zenoh.errors import LogDirError
from dora_zenoh.supervision.paths import make_log_dir, new_run_id, sanitize_name, state_dir, state_home


@pytest.mark.parametrize(("name", "clean"), [
    ("robot", "robot"),
    ("my robot/arm v2", "my-robot-arm-v2"),
    ("a.b_c-d", "a.b_c-d"),
    ("--.weird.--", "weird"),
    ("dora/**", "dora"),
    ("***", "dataflow"),
    ("", "dataflow"),
])
def test_sanitize_name_gives_one_key_chunk(name, clean):
    assert sanitize_name(name) == clean


def test_run_ids_sort_by_time_and_differ():
    ids = {new_run_id() for _ in range(20)}
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", i) for i in ids)
    assert len(ids) > 1


def test_state_home_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_home() == tmp_path / "dora-zenoh"
    monkeypatch.setenv("XDG_STATE_HOME", "")  # empty means unset (XDG base directory spec)
    assert state_home() == Path.home() / ".local" / "state" / "dora-zenoh"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert state_home() == Path.home() / ".local" / "state" / "dora-zenoh"


def test_state_dir_is_created_or_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert state_dir() == tmp_path / "state" / "dora-zenoh" and state_dir().is_dir()
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "file" / "state"))
    assert state_dir() == Path("/tmp")


def test_log_dir_is_base_slash_run_id(tmp_path):
    assert make_log_dir(tmp_path / "out", "run-1") == tmp_path / "out" / "run-1"
    assert (tmp_path / "out" / "run-1").is_dir()


def test_log_dir_falls_back_to_the_state_home(monkeypatch, tmp_path, capsys):
    (tmp_path / "file").write_text("")  # nothing can be created under a regular file
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = make_log_dir(tmp_path / "file" / "out", "run-2")
    assert path == tmp_path / "state" / "dora-zenoh" / "out" / "run-2" and path.is_dir()
    assert "its logs go to" in capsys.readouterr().err  # said, not silent


def test_no_log_dir_anywhere_names_both_places_and_the_fix(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "file" / "state"))
    with pytest.raises(LogDirError) as info:
        make_log_dir(tmp_path / "file" / "out", "run-3")
    message = str(info.value)
    assert f"in {tmp_path / 'file' / 'out'} (Not a directory)" in message
    assert f"nor in {tmp_path / 'file' / 'state' / 'dora-zenoh' / 'out'}" in message
    assert message.endswith("pass --log-dir with a directory you can write to")
