"""The node thread's spin before it blocks (dora_zenoh.tuning.sched.Spin), on a real Zenoh ring
channel: what it catches, and its backoff when it runs out. No timing assertions: a spin
either finds what is already there, or waits for what comes (bounded by the test timeout)."""
from __future__ import annotations

import threading

import pytest
import zenoh

from dora_zenoh.tuning import sched
from dora_zenoh.wire import zconfig


@pytest.fixture
def ring():
    """A session of its own (no endpoint: nothing else can reach it) and a ring channel on it."""
    session = zenoh.open(zconfig.peer_config([], []))
    try:
        yield session, session.declare_subscriber("test/spin", zenoh.handlers.RingChannel(8))
    finally:
        session.close()


@pytest.mark.timeout(60)
def test_a_spin_that_runs_out_backs_off_doubling_and_a_catch_resets_it(ring):
    session, sub = ring
    spin = sched.Spin(1)  # 1 ns: a spin on an empty ring runs out at once
    attempted = []
    for i in range(15):
        before = spin.attempts
        assert spin.poll(sub.try_recv) is None
        if spin.attempts > before:
            attempted.append(i)
    assert attempted == [0, 2, 6, 14]  # each miss skips 1, 3, 7, ... waits
    assert spin.skipped == 11 and spin.caught == 0
    for _ in range(15):  # the fourth miss skips the next 15 waits
        assert spin.poll(sub.try_recv) is None
    assert spin.attempts == 4 and spin.skipped == 26

    spin.budget_ns = 20 * 10**9  # now it spins until the sample comes (a lost one fails in 20 s)
    threading.Timer(0.05, session.put, ("test/spin", b"late")).start()
    sample = spin.poll(sub.try_recv)
    assert sample is not None and sample.payload.to_bytes() == b"late"
    assert spin.attempts == 5 and spin.caught == 1

    spin.budget_ns = 1
    assert spin.poll(sub.try_recv) is None  # no skip after a catch: it spins (and misses) again
    assert spin.attempts == 6 and spin.skipped == 26


def test_the_spin_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(sched.SPIN_ENV, raising=False)
    assert sched.spin_ns_from_env() is None
    monkeypatch.setenv(sched.SPIN_ENV, "0")
    assert sched.spin_ns_from_env() is None
    monkeypatch.setenv(sched.SPIN_ENV, "100")
    assert sched.spin_ns_from_env() == 100_000
    monkeypatch.setenv(sched.SPIN_ENV, "lots")
    with pytest.raises(ValueError, match="DORA_ZENOH_SPIN_US='lots' is not a whole number of microseconds"):
        sched.spin_ns_from_env()
