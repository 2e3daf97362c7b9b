"""The display decoder: Arrow, text, bytes and attachments, as topic echo / bag cat / zenoh-cli show them."""
from __future__ import annotations

import json

import pyarrow as pa

from dora_zenoh.introspect import decode as dec
from dora_zenoh.wire import codec


def _wire(value):
    payload, enc = codec.encode(value)
    return bytes(payload), (str(enc) if enc is not None else "zenoh/bytes")


def test_arrow_values_and_attachment():
    payload, enc = _wire(pa.array([1.5, 2.5, None]))
    d = dec.decode(payload, enc, codec.attachment(7, 123, {"frame": "map"}), key="dora/df/n/o")
    assert d.kind == "arrow" and d.arrow_type == "double" and d.length == 3
    assert d.value == [1.5, 2.5, None]
    assert (d.seq, d.ts, d.params) == (7, 123, {"frame": "map"})
    text = dec.to_text(d)
    assert "key: dora/df/n/o" in text and "seq: 7" in text and "double[3] [1.5, 2.5, None]" in text
    assert json.loads(json.dumps(dec.to_json(d)))["value"] == [1.5, 2.5, None]


def test_no_arrays_hides_values():
    payload, enc = _wire(pa.array(list(range(100)), pa.int32()))
    d = dec.decode(payload, enc)
    assert dec.value_text(d, no_arrays=True) == "<int32[100]>"
    assert "value" not in dec.to_json(d, no_arrays=True)
    assert "(68 more)" in dec.value_text(d)


def test_text_and_binary_never_raise():
    d = dec.decode("héllo".encode(), "text/plain;charset=utf-8")
    assert d.kind == "text" and d.value == "héllo"
    d = dec.decode(bytes(range(200, 256)) + b"abc", "zenoh/bytes", b"\xff not json")
    assert d.kind == "bytes" and d.seq is None
    assert dec.value_text(d).startswith("<59 bytes> c8 c9")
    assert "+43 bytes" in dec.value_text(d)
    broken = dec.decode(b"\x00\x01garbage", dec.ARROW_STREAM)
    assert broken.kind == "bytes" and "Arrow" in broken.error
    assert dec.decode(b"", "zenoh/bytes").kind == "empty"


def test_uint8_bytes_from_a_node_are_bytes():
    payload, enc = _wire(pa.array([104, 105], pa.uint8()))
    d = dec.decode(payload, enc)
    assert d.kind == "bytes" and d.value == b"hi" and "|hi|" in dec.value_text(d)


def test_json_of_nested_and_binary_values():
    payload, enc = _wire(pa.array([{"a": b"\x00", "b": float("nan")}]))
    out = dec.to_json(dec.decode(payload, enc))
    assert out["value"] == [{"a": {"base64": "AA=="}, "b": None}]


def test_unknown_encoding_sniffs_arrow_and_text():
    payload, _ = _wire(pa.array([1, 2], pa.int64()))
    d = dec.decode(payload, "")
    assert d.kind == "arrow" and d.value == [1, 2]
    assert dec.decode(b"hello", "").kind == "text"
    assert dec.decode(b"\xff\xff\xff\xffnot arrow", "").kind == "bytes"


def test_zenoh_cli_decoder_names_the_key():
    from dora_zenoh.introspect.zenoh_cli import decode

    payload, _ = _wire(pa.array([0.5]))
    assert decode("dora/f/n/o", payload) == "dora/f/n/o: double[1] [0.5]"
    assert decode("dora/f/n/raw", bytes([0, 255, 7])) == "dora/f/n/raw: <3 bytes> 00 ff 07 |...|"


def test_zenoh_cli_entry_point_is_registered():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="zenoh_cli.codecs.decoders") if e.name == "dora"]
    assert ep.load().__module__ == "dora_zenoh.introspect.zenoh_cli"
