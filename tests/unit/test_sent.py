"""A node's sent counts from its notices and its sent files, and the tokens that say them.

Real sent files and real Zenoh sessions; the process is a stand-in with the one flag the
counts read (``noticed``), as a NodeProcess has it.
"""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import zenoh

from dora_zenoh.supervision.sent import SentCounts, SentTokens
from dora_zenoh.wire import keys, tally, zconfig


def _file(folder: Path, name: str, n: int, marked: bool) -> str:
    path = str(folder / name)
    counts = tally.SentTally(path)
    counts.set(counts.slot("n"), n)  # type: ignore[arg-type]
    if marked:
        counts.mark_noticed()
    return path


def test_a_notice_before_the_exit_counts_and_the_file_does_not(tmp_path: Path) -> None:
    sent, proc = SentCounts(), SimpleNamespace(noticed=False)
    sent.notice("src", {"n": 30}, proc)
    sent.ended_without_notice("src", _file(tmp_path, "src.0", 30, marked=True), proc)
    assert proc.noticed and sent.of("src") == {"n": 30}


def test_a_marked_file_counts_until_its_late_notice_takes_its_place(tmp_path: Path) -> None:
    """The mark says the notice went out, not that it came: counted from the file (before,
    not at all: a reader waited for a count for good); the notice, if it comes, replaces it."""
    sent = SentCounts()
    first = SimpleNamespace(noticed=False)
    sent.ended_without_notice("src", _file(tmp_path, "src.0", 30, marked=True), first)
    assert sent.of("src") == {"n": 30}
    second = SimpleNamespace(noticed=False)  # restarted meanwhile: the late notice is the first's
    sent.notice("src", {"n": 30}, second)
    assert sent.of("src") == {"n": 30} and not second.noticed
    sent.notice("src", {"n": 12}, second)  # the second's own
    assert sent.of("src") == {"n": 42} and second.noticed


def test_a_notice_names_its_process_so_a_lost_one_is_not_taken_for_the_next(tmp_path: Path) -> None:
    """Process 0's notice went out and was lost: counted from its file (30). Process 1's own
    notice (12) must not take its place; it names its file."""
    sent = SentCounts()
    later = _file(tmp_path, "src.1", 12, marked=False)
    first, second = SimpleNamespace(noticed=False), SimpleNamespace(noticed=False, sent_file=later)
    sent.ended_without_notice("src", _file(tmp_path, "src.0", 30, marked=True), first)
    sent.notice("src", {"n": 12}, second, later)
    assert second.noticed and sent.of("src") == {"n": 42}
    sent.ended_without_notice("src", later, second)  # its notice came: its file is not counted
    assert sent.of("src") == {"n": 42}
    sent.notice("src", {"n": 30}, None, str(tmp_path / "src.0"))  # the lost one, late after all
    assert sent.of("src") == {"n": 42}


def test_an_unmarked_file_of_a_killed_process_adds_to_what_came_before(tmp_path: Path) -> None:
    sent = SentCounts()
    sent.notice("src", {"n": 5}, SimpleNamespace(noticed=False))
    killed = SimpleNamespace(noticed=False)
    sent.ended_without_notice("src", _file(tmp_path, "src.1", 7, marked=False), killed)
    assert sent.all() == {"src": {"n": 12}}


def test_a_late_notice_of_an_unmarked_file_replaces_its_count(tmp_path: Path) -> None:
    """Process 0 sent its notice and was killed before it marked its file: counted from the
    file (30). Its notice, late, names that file: it takes the file's place (counted twice
    before: 60, and the readers waited for 30 messages that were never sent). A file-less
    notice never takes an unmarked file's place."""
    sent = SentCounts()
    first = SimpleNamespace(noticed=False)
    sent.ended_without_notice("src", _file(tmp_path, "src.0", 30, marked=False), first)
    second = SimpleNamespace(noticed=False, sent_file=str(tmp_path / "src.1"))
    sent.notice("src", {"n": 30}, second, str(tmp_path / "src.0"))
    assert sent.of("src") == {"n": 30} and not second.noticed
    sent.notice("src", {"n": 4}, second, second.sent_file)
    assert sent.of("src") == {"n": 34} and second.noticed
    third = SimpleNamespace(noticed=False)
    sent.ended_without_notice("other", _file(tmp_path, "other.0", 5, marked=False), third)
    sent.notice("other", {"n": 2}, None)  # no file named: an unmarked file is not the one
    assert sent.of("other") == {"n": 7}


def test_the_last_tokens_declared_say_the_last_counts(tmp_path: Path) -> None:
    """A notice's thread and the run loop declare at the same time: whichever order they run
    in, the tokens left are the latest counts, one per output."""
    session = zenoh.open(zconfig.peer_config([], []))
    try:
        sent = SentCounts()
        tokens = SentTokens(session, "dora", "flow-sent", sent)
        proc = SimpleNamespace(noticed=False)
        threads = []
        for _ in range(20):
            sent.notice("src", {"n": 1}, proc)
            threads.append(threading.Thread(target=tokens.declare, args=("src",)))
            threads[-1].start()
        for t in threads:
            t.join(10)
        root = keys.live_root("dora", "flow-sent")
        live = sorted(str(r.ok.key_expr) for r in session.liveliness().get(f"{root}/sent/**", timeout=2) if r.ok)
        assert live == [keys.sent_token("dora", "flow-sent", "src", "n", 20)], live
    finally:
        session.close()
