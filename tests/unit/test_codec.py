"""wire/codec.py: what send_output puts on the wire, and how a receiver reads it back."""
from __future__ import annotations

import json

import pytest

from dora_zenoh.wire import codec

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")


def _payload_bytes(payload) -> bytes:
    return payload.to_bytes() if hasattr(payload, "to_bytes") else bytes(payload)


@pytest.mark.parametrize("data", [b"", b"\x00\x01raw", bytearray(b"ba"), memoryview(b"mv")])
def test_bytes_travel_untouched_with_the_default_encoding(data):
    payload, encoding = codec.encode(data)
    assert encoding is None
    assert _payload_bytes(payload) == bytes(data)


def test_none_is_an_empty_payload():
    assert codec.encode(None) == (b"", None)


def test_str_is_utf8_text():
    payload, encoding = codec.encode("héllo")
    assert payload == "héllo".encode()
    assert encoding == codec.ENC_TEXT


def test_uint8_arrow_array_is_sent_as_its_raw_bytes():
    payload, encoding = codec.encode(pa.array([1, 2, 3], type=pa.uint8()))
    assert (payload, encoding) == (b"\x01\x02\x03", None)
    sliced = pa.array([9, 1, 2, 3], type=pa.uint8()).slice(1, 2)  # an offset into the buffer counts
    assert codec.encode(sliced) == (b"\x01\x02", None)


@pytest.mark.parametrize("array", [
    pa.array([1.5, 2.5], type=pa.float32()),
    pa.array([1, None, 3], type=pa.int64()),
    pa.array(["a", "bc"]),
    pa.array([[1, 2], [3]], type=pa.list_(pa.int32())),
    pa.array([{"x": 1, "y": "a"}]),
    pa.array([True, False]),
    pa.array([1, None], type=pa.uint8()),  # uint8 with nulls is not plain bytes
])
def test_arrow_arrays_round_trip_with_their_type(array):
    payload, encoding = codec.encode(array)
    assert encoding == codec.ENC_ARROW
    assert codec.is_arrow_stream(encoding)
    back = codec.to_arrow(payload, True)
    assert back.type == array.type
    assert back.to_pylist() == array.to_pylist()


def test_chunked_arrays_are_combined():
    chunked = pa.chunked_array([[1, 2], [3]], type=pa.int16())
    payload, encoding = codec.encode(chunked)
    assert codec.to_arrow(payload, True).to_pylist() == [1, 2, 3]


@pytest.mark.parametrize(("values", "dtype"), [([1.0, 2.0], "float64"), ([1, 2, 3], "int32"),
                                               ([[1, 2], [3, 4]], "uint16")])
def test_numpy_arrays_become_arrow_values_flattened(values, dtype):
    array = np.array(values, dtype=dtype)
    payload, encoding = codec.encode(array)
    back = codec.to_arrow(payload, True)
    assert back.to_numpy().tolist() == array.ravel().tolist()
    assert str(back.type) == str(pa.from_numpy_dtype(array.dtype))


def test_lists_become_arrow_values():
    payload, _ = codec.encode([1, 2, 3])
    assert codec.to_arrow(payload, True).to_pylist() == [1, 2, 3]


def test_raw_bytes_read_back_as_uint8_arrow():
    assert codec.to_arrow(b"\x01\x02", False).to_pylist() == [1, 2]
    assert codec.to_arrow(b"\x01\x02", False).type == pa.uint8()


def test_2022_api_bytes_of_numeric_arrow_values_are_their_values():
    payload, _ = codec.encode(pa.array([1, 2], type=pa.int32()))
    assert codec.from_arrow_to_bytes(payload, True) == np.array([1, 2], dtype="int32").tobytes()
    strings, _ = codec.encode(pa.array(["a"]))
    assert codec.from_arrow_to_bytes(strings, True) == strings  # not fixed width: the stream as sent
    assert codec.from_arrow_to_bytes(b"raw", False) == b"raw"


def test_unsupported_values_name_what_can_be_sent():
    with pytest.raises(TypeError, match="cannot send a dict; send bytes"):
        codec.encode({"a": 1})


def test_encodings_are_told_apart():
    assert not codec.is_arrow_stream(codec.ENC_BYTES)
    assert not codec.is_arrow_stream(codec.ENC_TEXT)
    assert codec.is_arrow_stream(codec.zenoh.Encoding(codec.ARROW_STREAM + ";schema=x"))


# -- attachments ---------------------------------------------------------------------------------
def test_attachment_without_params_is_seq_and_ts():
    raw = codec.attachment(7, 123, None)
    assert raw == codec.SEQ_TS % (7, 123)
    assert json.loads(raw) == {"seq": 7, "ts": 123}
    assert codec.parse_attachment(raw) == {"seq": 7, "ts": 123}


def test_attachment_with_params_round_trips():
    params = {"w": 640, "name": "cam", "nested": {"a": [1, 2]}}
    raw = codec.attachment(0, 5, params)
    assert codec.parse_attachment(raw) == {"seq": 0, "ts": 5, "params": params}
    assert codec.seq_in(raw) == 0


@pytest.mark.parametrize(("raw", "seq"), [
    (codec.attachment(42, 1, None), 42),
    (codec.attachment(3, 1, {"k": 1}), 3),
    (b'{"seq":x,"ts":1}', None),     # corrupted
    (b'{"other":1}', None),           # a plain Zenoh publisher's attachment
    (b"", None),
])
def test_seq_in(raw, seq):
    assert codec.seq_in(raw) == seq


@pytest.mark.parametrize("raw", [None, b"", b"not json", b"[1, 2]", b'"text"'])
def test_foreign_attachments_parse_as_empty(raw):
    assert codec.parse_attachment(raw) == {}


def _writer_stream(array) -> bytes:
    batch = pa.record_batch([array], names=["value"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


SAME_SHAPE = [
    [pa.array([1, 2, 3], type=pa.int64()), pa.array([-7, 0, 2**50], type=pa.int64())],
    [pa.array([0.5, 1.5]), pa.array([-2.25, 1e300])],
    [pa.array([1, 2], type=pa.int16()), pa.array([3, 4], type=pa.int16())],
    [pa.array([1], type=pa.timestamp("ns", tz="UTC")), pa.array([2], type=pa.timestamp("ns", tz="UTC"))],
]


@pytest.mark.parametrize("arrays", SAME_SHAPE, ids=lambda a: str(a[0].type))
def test_same_shaped_arrays_are_framed_exactly_as_the_ipc_writer_writes_them(arrays):
    """After the first array of a type and length, the next ones are sent as the remembered
    frame around their data: byte for byte the writer's stream, with their own values."""
    codec._frames.clear()
    for array in arrays + arrays:
        payload, encoding = codec.encode(array)
        assert encoding == codec.ENC_ARROW
        assert bytes(payload) == _writer_stream(array)
    assert len(codec._frames) == 1


def test_arrays_a_frame_does_not_fit_go_through_the_writer():
    codec._frames.clear()
    codec.encode(pa.array([1, 2, 3, 4], type=pa.int64()))
    assert len(codec._frames) == 1
    for array in (pa.array([1, None, 3, 4], type=pa.int64()),        # nulls: a validity bitmap
                  pa.array([9, 1, 2, 3, 4], type=pa.int64()).slice(1),  # a slice of a longer array
                  pa.array([True, False, True, True]),                # bits, not bytes
                  pa.array(["a", "b", "c", "d"])):                    # variable width
        payload, _ = codec.encode(array)
        assert bytes(payload) == _writer_stream(array)
        got = pa.ipc.open_stream(pa.py_buffer(bytes(payload))).read_next_batch().column(0)
        assert got.equals(array)
    assert len(codec._frames) == 1  # none of these taught a frame
