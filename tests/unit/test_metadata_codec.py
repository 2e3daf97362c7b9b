"""Metadata in the attachment: datetimes round-trip (UTC, µs) and plain JSON readers still read it."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np

from dora_zenoh.wire import codec


def roundtrip(params: dict) -> dict:
    return codec.metadata_of(codec.parse_attachment(codec.attachment(3, 1_700_000_000_123_456_789, params)))


def test_aware_and_naive_datetimes_come_back_as_utc_with_microseconds() -> None:
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    naive = dt.datetime(2024, 1, 2, 3, 4, 5, 654321)
    got = roundtrip({"a": aware, "n": naive, "x": 1})
    assert got["a"] == aware and got["a"].utcoffset() == dt.timedelta(0)
    assert got["a"].isoformat() == "2024-01-02T01:04:05.123456+00:00"
    assert got["n"] == naive.astimezone(dt.timezone.utc)  # naive = local time, as Python reads it
    assert got["n"].microsecond == 654321
    assert got["x"] == 1


def test_a_plain_json_reader_sees_iso_strings() -> None:
    raw = codec.attachment(0, 5, {"t": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc), "k": "v"})
    plain = json.loads(raw)
    assert plain["params"] == {"t": "2024-01-02T00:00:00.000000+00:00", "k": "v"}
    assert plain["seq"] == 0 and plain["ts"] == 5 and plain["dt"] == ["t"]


def test_numpy_scalars_arrive_as_their_str_like_dora_rs() -> None:
    assert roundtrip({"i": np.int64(5), "f": np.float32(2.5)}) == {"i": "5", "f": "2.5"}


def test_plain_metadata_keeps_the_fast_format() -> None:
    assert codec.attachment(1, 2, {"a": 1}) == b'{"seq":1,"ts":2,"params":{"a": 1}}'
    assert codec.attachment(1, 2, None) == b'{"seq":1,"ts":2}'


def test_a_string_that_looks_like_a_date_stays_a_string() -> None:
    assert roundtrip({"s": "2024-01-02T00:00:00+00:00"}) == {"s": "2024-01-02T00:00:00+00:00"}


def test_utc_datetime_of_a_send_time() -> None:
    assert codec.utc_datetime(1_700_000_000_123_456_789) == dt.datetime(
        2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.timezone.utc)
