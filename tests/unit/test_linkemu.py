"""The link emulator's shaping (scripts/linkemu.py's Shaper): pure logic, no TUN, no root, no clock.

Times are passed in, so delay, order, loss, the queue bound and `down` are checked exactly.
The emulator over real TUN devices is tests/integration/test_link_faults.py.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "linkemu.py"
_spec = importlib.util.spec_from_file_location("linkemu", _SCRIPT)
linkemu = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(linkemu)  # type: ignore[union-attr]


def test_no_delay_passes_packets_through_at_once() -> None:
    s = linkemu.Shaper(0, 0, 0, 100, seed=1)
    assert s.accept(0, b"p", 10.0) == b"p"
    assert s.count["received"] == [1, 0] and s.next_due() is None


def test_delay_holds_each_packet_until_due_in_order_per_direction() -> None:
    s = linkemu.Shaper(5, 0, 0, 100, seed=1)
    for i in range(10):
        assert s.accept(0, bytes([i]), 1.0 + i * 0.001) is None
    assert s.accept(1, b"back", 1.0) is None
    assert s.due(0, 1.0049) == []
    assert s.due(0, 1.0051) == [b"\x00"]
    assert s.due(0, 2.0) == [bytes([i]) for i in range(1, 10)]
    assert s.due(1, 1.0051) == [b"back"]
    assert s.next_due() is None and s.lateness()["late_samples"] == 11


def test_loss_drops_about_the_asked_share_and_counts_it() -> None:
    s = linkemu.Shaper(0, 0, 0.1, 100, seed=7)
    passed = sum(s.accept(0, b"x", 0.0) is not None for _ in range(10000))
    assert s.count["lost"][0] == 10000 - passed
    assert 800 < s.count["lost"][0] < 1200


def test_down_drops_what_is_held_and_what_comes_until_up() -> None:
    s = linkemu.Shaper(10, 0, 0, 100, seed=1)
    s.accept(0, b"held", 0.0)
    s.set({"down": True})
    assert s.accept(1, b"during", 0.001) is None
    assert s.due(0, 1.0) == [] and s.count["dropped_down"] == [1, 1]
    s.set({"down": False, "delay_ms": 0})
    assert s.accept(0, b"after", 1.0) == b"after"


def test_a_full_queue_drops_and_counts() -> None:
    s = linkemu.Shaper(10, 0, 0, 3, seed=1)
    for _ in range(5):
        s.accept(0, b"x", 0.0)
    assert s.queued(0) == 3 and s.count["dropped_full"] == [2, 0]


def test_jitter_spreads_due_times_within_its_bound() -> None:
    s = linkemu.Shaper(10, 4, 0, 1000, seed=3)
    for i in range(200):
        s.accept(0, i.to_bytes(2, "big"), 0.0)
    assert s.due(0, 0.0059) == []
    out = s.due(0, 0.0141)
    assert len(out) == 200 and out != sorted(out)  # all out by delay + jitter, some overtook others
