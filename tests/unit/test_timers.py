"""The one parser of ``dora/timer/...`` sources (descriptor.timers), used by the YAML checks and YAML-less nodes."""
from __future__ import annotations

import pytest

from dora_zenoh.descriptor.timers import HINT, TimerError, is_timer, parse_timer
from dora_zenoh.errors import DoraZenohError


@pytest.mark.parametrize(
    ("source", "ns"),
    [
        ("dora/timer/millis/100", 100_000_000),
        ("dora/timer/millis/1", 1_000_000),
        ("dora/timer/secs/2", 2_000_000_000),
        ("dora/timer/secs/+3", 3_000_000_000),
        ("dora/timer/hz/30", round(1e9 / 30)),
        ("dora/timer/hz/0.5", 2_000_000_000),
        ("dora/timer/hz/1000000", 1_000),  # exactly 1 MHz is the fastest allowed
    ],
)
def test_valid_timers(source: str, ns: int) -> None:
    assert parse_timer(source) == ns


@pytest.mark.parametrize(
    ("source", "message", "hint"),
    [
        ("dora/timer/millis/0", "timer period must be positive, not 0", "e.g. dora/timer/millis/100"),
        ("dora/timer/secs/0", "timer period must be positive, not 0", "e.g. dora/timer/secs/100"),
        ("dora/timer/millis/-5", "timer period must be positive, not -5", "e.g. dora/timer/millis/100"),
        ("dora/timer/hz/0", "timer frequency must be positive, not 0", "e.g. dora/timer/hz/30"),
        ("dora/timer/hz/-2", "timer frequency must be positive, not -2", "e.g. dora/timer/hz/30"),
        ("dora/timer/millis/abc", "timer period 'abc' is not a whole number", "e.g. dora/timer/millis/100"),
        ("dora/timer/secs/1.5", "timer period '1.5' is not a whole number", "e.g. dora/timer/secs/100"),
        ("dora/timer/millis/", "timer period '' is not a whole number", "e.g. dora/timer/millis/100"),
        ("dora/timer/hz/fast", "timer frequency 'fast' is not a number", "e.g. dora/timer/hz/30"),
        ("dora/timer/hz/inf", "timer frequency 'inf' is not a number", "e.g. dora/timer/hz/30"),
        ("dora/timer/hz/nan", "timer frequency 'nan' is not a number", "e.g. dora/timer/hz/30"),
        ("dora/timer/milis/1", "unknown timer unit 'milis' in 'dora/timer/milis/1'", "did you mean 'millis'? " + HINT),
        ("dora/timer/minutes/1", "unknown timer unit 'minutes' in 'dora/timer/minutes/1'", HINT),
        ("dora/timer/hz/2000000", "timer 'dora/timer/hz/2000000' is faster than 1 MHz", "use a period of at least 1 µs"),
        ("dora/clock/millis/1", "unknown built-in source 'dora/clock/millis/1'", HINT),
        ("dora/timer/millis", "unknown built-in source 'dora/timer/millis'", HINT),
        ("dora/timer/millis/1/2", "unknown built-in source 'dora/timer/millis/1/2'", HINT),
        ("dora/timer", "unknown built-in source 'dora/timer'", HINT),
    ],
)
def test_bad_timers(source: str, message: str, hint: str) -> None:
    with pytest.raises(TimerError) as info:
        parse_timer(source)
    assert (info.value.message, info.value.hint) == (message, hint)
    assert str(info.value) == f"{message} ({hint})"


def test_timer_error_is_a_dora_zenoh_error_and_a_value_error() -> None:
    with pytest.raises(DoraZenohError):
        parse_timer("dora/timer/millis/0")
    with pytest.raises(ValueError):
        parse_timer("dora/timer/millis/0")


@pytest.mark.parametrize(
    ("source", "expected"),
    [("dora/timer/millis/1", True), ("dora/clock", True), ("camera/image", False), ("dorax/out", False)],
)
def test_is_timer_names_built_in_sources(source: str, expected: bool) -> None:
    assert is_timer(source) is expected
