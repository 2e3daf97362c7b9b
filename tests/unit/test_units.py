"""Durations and sizes as people write them (dora_zenoh.units)."""
from __future__ import annotations

import pytest

from dora_zenoh.errors import DoraZenohError, UnitError
from dora_zenoh.units import parse_duration, parse_size


@pytest.mark.parametrize(("text", "seconds"), [
    ("10", 10.0),
    ("10s", 10.0),
    ("500ms", 0.5),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("0.25", 0.25),
    (".5s", 0.5),
    ("1.5 m", 90.0),
    (" 3s ", 3.0),
    ("0", 0.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "ten", "10x", "10 sec", "-1s", "1e3", "5d", "1.2.3", "1h30m"])
def test_bad_durations_name_the_text_and_the_fix(text):
    with pytest.raises(UnitError) as info:
        parse_duration(text)
    assert str(info.value) == f"'{text}' is not a duration: use e.g. 10s, 500ms, 2m or 1h"


def test_unit_error_is_a_value_error_and_ours():
    # ValueError: callers that caught the old ValueError still do; DoraZenohError: the CLI shows it.
    assert issubclass(UnitError, ValueError) and issubclass(UnitError, DoraZenohError)


@pytest.mark.parametrize(("text", "size"), [
    ("4096", 4096),
    ("512B", 512),
    ("64KiB", 64 * 1024),
    ("10MiB", 10 * 1024 ** 2),
    ("1GiB", 1024 ** 3),
    ("2TiB", 2 * 1024 ** 4),
    ("10kB", 10_000),
    ("5MB", 5_000_000),
    ("1GB", 1_000_000_000),
    ("1.5KiB", 1536),
    ("10 mib", 10 * 1024 ** 2),
    (" 7 b ", 7),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "ten", "10m", "10k", "10XB", "-1MiB", "1e3"])
def test_bad_sizes_name_the_text_and_the_fix(text):
    with pytest.raises(UnitError, match=f"^'{text}' is not a size: use e.g. 4096, 64KiB, 10MiB or 1GB$"):
        parse_size(text)


def test_fractional_bytes_are_refused():
    with pytest.raises(UnitError, match="'0.5B' is not a whole number of bytes"):
        parse_size("0.5B")


@pytest.mark.parametrize("text", ["99999999999999s", "1000000001", "300000h"])
def test_durations_past_what_a_thread_can_wait_are_refused(text):
    # `run --stop-after 99999999999999s` crashed the runner with OverflowError (a wait that long
    # overflows the platform's time_t)
    with pytest.raises(UnitError) as info:
        parse_duration(text)
    assert str(info.value) == f"'{text}' is too long a duration: at most 1000000000 s (about 31 years)"
    assert parse_duration("1000000000") == 1e9
