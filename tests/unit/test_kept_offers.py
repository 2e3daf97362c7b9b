"""A dataflow's start offer kept on disk (supervision.keptoffers): a coordinator started again serves
the files the dataflow started with, not the folder's later edits."""
from __future__ import annotations

import hashlib
import stat
import time

from dora_zenoh.supervision import ship
from dora_zenoh.supervision.keptoffers import KeptOffers


def _offer(folder) -> ship.Offer:
    kept: dict[str, bytes] = {}
    manifest, where = ship.scan(folder, None, kept)
    return ship.Offer(folder, manifest, where, kept=kept)


def test_a_kept_offer_serves_the_start_files_after_the_folder_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "proc.py").write_text("print('start version')\n")
    (flow / "big.bin").write_bytes(b"B" * (ship.KEEP_FILE + 10))  # not kept in memory: copied aside when asked
    start = _offer(flow)
    big_sha = start.manifest.files["big.bin"][1]
    start.chunk(big_sha, 0)  # a machine fetched it: copied aside
    kept = KeptOffers("tcp/10.0.0.1:7447")
    kept.keep("run-1", start)
    folder = kept.root / "run-1"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # the folder changes; the coordinator is started again
    (flow / "proc.py").write_text("print('edited')\n")
    (flow / "big.bin").write_bytes(b"C" * 10)
    again = KeptOffers("tcp/10.0.0.1:7447").take_back("run-1")
    assert again is not None and again.manifest_sha == start.manifest_sha and again.root == flow
    proc_sha = start.manifest.files["proc.py"][1]
    assert again.chunk(proc_sha, 0) == b"print('start version')\n"
    assert hashlib.sha256(b"".join(again.chunk(big_sha, i) for i in range(2))).hexdigest() == big_sha
    assert ship.changed_since(again) == ["big.bin", "proc.py"]
    again.discard()  # its dataflow ended
    assert not folder.exists()
    assert KeptOffers("tcp/10.0.0.1:7447").take_back("run-1") is None


def test_offers_not_adopted_are_pruned_and_others_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "n.py").write_text("pass\n")
    earlier = KeptOffers("tcp/127.0.0.1:7447")
    for run in ("adopted", "ended"):
        earlier.keep(run, _offer(flow))
    other = KeptOffers("tcp/127.0.0.1:9000")  # another coordinator's (another endpoint)
    other.keep("theirs", _offer(flow))
    KeptOffers("tcp/127.0.0.1:7447").prune_later(lambda: {"adopted"}, window=0.05)
    deadline = time.monotonic() + 10
    while (earlier.root / "ended").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(p.name for p in earlier.root.iterdir()) == ["adopted"]
    assert (other.root / "theirs" / ship.OFFER_FILE).exists()


def test_a_half_kept_offer_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    kept = KeptOffers("tcp/127.0.0.1:7447")
    (kept.root / "run-2").mkdir(parents=True)  # its content written, not yet its manifest
    assert kept.take_back("run-2") is None
    assert kept.take_back("never") is None
