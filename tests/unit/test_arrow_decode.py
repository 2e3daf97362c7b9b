"""A received Arrow IPC stream is decoded against a cached schema (node.arrow): the same
array as ``pyarrow.ipc.open_stream`` gives, or no answer (and then open_stream decodes or
rejects it, as always)."""
from __future__ import annotations

import pytest

pa = pytest.importorskip("pyarrow")

from dora_zenoh.node import arrow  # noqa: E402
from dora_zenoh.wire import codec as wire  # noqa: E402

ARRAYS = [
    pa.array([5], type=pa.int64()),
    pa.array([1.5, None, 3.0], type=pa.float32()),
    pa.array(["a", None, "ccc"]),
    pa.array([{"a": 1, "b": "x"}, {"a": 2, "b": None}]),
    pa.array([[1, 2], [], None, [3]]),
    pa.array([], type=pa.int32()),
    pa.array([b"\x00\x01", b""], type=pa.binary()),
]


def _stream(array) -> bytes:
    payload, encoding = wire.encode(array)
    assert encoding is not None and wire.is_arrow_stream(encoding)
    return bytes(payload)


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: str(a.type))
def test_cached_schema_decodes_what_open_stream_decodes(array):
    arrow._load()
    raw = _stream(array)
    expected = pa.ipc.open_stream(pa.py_buffer(raw)).read_next_batch().column(0)
    for _ in range(2):  # the second time from the cache
        column = arrow._known_schema_column(raw)
        assert column is not None
        assert column.type == expected.type and column.equals(expected)


def test_two_schemas_with_the_same_framing_never_mix():
    arrow._load()
    ints, floats = _stream(pa.array([1, 2], type=pa.int64())), _stream(pa.array([1.0, 2.0], type=pa.float64()))
    for _ in range(2):
        assert arrow._known_schema_column(ints).type == pa.int64()
        assert arrow._known_schema_column(floats).type == pa.float64()


def test_streams_it_does_not_handle_are_left_to_open_stream():
    arrow._load()
    dictionary = _stream(pa.array(["x", "y", "x"]).dictionary_encode())
    assert arrow._known_schema_column(dictionary) is None  # a dictionary batch comes first
    for bad in (b"", b"junk", b"\xff\xff\xff\xff", b"\xff\xff\xff\xff\x10\x00\x00\x00garbage",
                _stream(pa.array([1]))[:-9]):
        assert arrow._known_schema_column(bad) is None
        with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error, as before the cache
            pa.ipc.open_stream(pa.py_buffer(bad)).read_next_batch()


FIXED = [
    (pa.array([5, 6, 7], type=pa.int64()), pa.array([-1, 0, 2**40], type=pa.int64())),
    (pa.array([1.5, None, 3.0], type=pa.float32()), pa.array([None, 2.5, -1.0], type=pa.float32())),
    (pa.array([True, None, False]), pa.array([False, True, None])),
    (pa.array([1, 2], type=pa.timestamp("us")), pa.array([3, None], type=pa.timestamp("us"))),
]


@pytest.mark.parametrize(("first", "second"), FIXED, ids=lambda a: str(a.type))
def test_a_known_layout_decodes_each_message_own_values(first, second):
    """A fixed-width column's buffers are located once; the next same-shaped message is rebuilt
    from that layout over its own bytes: its own values and nulls, never the first one's."""
    arrow._load()
    arrow._layouts.clear()
    arrow._recent = None
    raw1, raw2 = _stream(first), _stream(second)
    assert arrow._known_schema_column(raw1).equals(first)
    assert len(arrow._layouts) == 1  # learnt from the first message
    for raw, array in ((raw2, second), (raw1, first), (raw2, second)):
        column = arrow._known_schema_column(raw)
        assert column.type == array.type and column.equals(array)
        assert column.null_count == array.null_count


def test_a_layout_serves_only_streams_of_the_same_prefix_and_length():
    arrow._load()
    arrow._layouts.clear()
    arrow._recent = None
    raw = _stream(pa.array([1, 2, 3], type=pa.int64()))
    arrow._known_schema_column(raw)
    assert arrow._known_schema_column(raw[:-9]) is None  # cut short: not from the layout, and refused
    longer = _stream(pa.array([1, 2, 3, 4], type=pa.int64()))
    assert arrow._known_schema_column(longer).to_pylist() == [1, 2, 3, 4]
    for variable in (pa.array(["a", "bb"]), pa.array([[1], [2, 3]])):  # not fixed-width: never a layout
        arrow._layouts.clear()
        arrow._recent = None
        arrow._known_schema_column(_stream(variable))
        assert not arrow._layouts


def test_a_recipe_is_given_only_for_payloads_that_surely_decode():
    """An event builds its value when first read only when the payload cannot fail to decode
    (raw bytes; a fixed-width array of a known layout); anything else is decoded at once, so a
    payload that does not decode is dropped before the node sees it."""
    arrow._load()
    arrow._layouts.clear()
    arrow._recent = None
    assert arrow.build(b"\x01\x02", arrow.recipe(b"\x01\x02", wire.ENC_BYTES)).to_pylist() == [1, 2]
    first, second = _stream(pa.array([1, 2], type=pa.int64())), _stream(pa.array([3, 4], type=pa.int64()))
    assert arrow.recipe(first, wire.ENC_ARROW) is None  # not seen yet: decode it now
    assert arrow.decode(first, wire.ENC_ARROW).to_pylist() == [1, 2]
    how = arrow.recipe(second, wire.ENC_ARROW)
    assert how is not None and arrow.build(second, how).to_pylist() == [3, 4]
    for unsure in (b"not arrow at all", second[:-1], _stream(pa.array(["a"])), b"\xff\xff\xff\xff" + b"\x00" * 4):
        assert arrow.recipe(unsure, wire.ENC_ARROW) is None
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error: the node drops the message
        arrow.decode(b"not arrow at all", wire.ENC_ARROW)


def test_recipes_of_two_shapes_in_turn_build_each_message_own_values():
    """recipe() tries the last shape first; messages of two shapes in turn (two inputs) still
    each get their own layout and values."""
    arrow._load()
    arrow._layouts.clear()
    arrow._recent = None
    ints = [_stream(pa.array([i, i + 1], type=pa.int64())) for i in range(3)]
    floats = [_stream(pa.array([i / 2], type=pa.float64())) for i in range(3)]
    arrow.decode(ints[0], wire.ENC_ARROW)
    arrow.decode(floats[0], wire.ENC_ARROW)
    for i in (1, 2, 0):
        for raw, expected in ((ints[i], [i, i + 1]), (floats[i], [i / 2])):
            how = arrow.recipe(raw, wire.ENC_ARROW)
            assert how is not None and arrow.build(raw, how).to_pylist() == expected
    assert arrow.recipe(ints[1], wire.ENC_BYTES) is arrow.RAW  # the encoding decides first
    assert arrow.recipe(ints[1], wire.ENC_TEXT) is None  # not Arrow: decoded now, as what it is
    assert arrow.decode(ints[1], wire.ENC_TEXT).type == pa.uint8()


def _bad_offsets() -> bytes:
    """A string array's stream whose last offset (11) says 100,000,000 (framed right)."""
    raw = bytearray(_stream(pa.array(["hello", "world!"])))
    at = raw.rfind((11).to_bytes(4, "little"))
    raw[at:at + 4] = (100_000_000).to_bytes(4, "little")
    return bytes(raw)


def test_an_array_whose_offsets_run_off_its_buffer_is_refused_not_read():
    """pyarrow's IPC reader does not check offsets; reading such values crashed nodes and
    `topic echo` with SIGSEGV. Node decoding (twice: the schema is cached after the first) and
    the display decoder refuse it."""
    from dora_zenoh.introspect import decode as dec

    bad = _bad_offsets()
    for _ in range(2):
        with pytest.raises(pa.ArrowInvalid, match="offset"):
            arrow.decode(bad, wire.ENC_ARROW)
    shown = dec.decode(bad, str(wire.ENC_ARROW))
    assert shown.kind != "arrow" and "not a readable Arrow IPC stream" in (shown.error or ""), shown
