"""What any Zenoh session may put on a key a node reads: attachments and end-of-stream notices
are checked before they are trusted (issue 19, point 3)."""
from __future__ import annotations

import json

import pytest

from dora_zenoh.wire import codec


@pytest.mark.parametrize("raw,problem", [
    (b'{"params": "notadict"}', '"params" is a str'),
    (b"[" * 100000 + b"]" * 100000, "nested more than"),
    (b'{"params": ' * 100000, "nested more than"),
    (b'{"seq": "one"}', '"seq" is not an integer'),
    (b'{"seq": 1, "ts": 2.5}', '"ts" is not an integer'),
    (b"[1, 2]", "not an object"),
    (b"\xff\xfe", "not valid JSON"),
    # metadata["timestamp"] and the datetime parameters are made of these (a helper's forgeries, 3 Dec:
    # each raised inside the node's code: TypeError, unhashable list, OverflowError twice)
    (b'{"seq":1,"ts":1,"dt":5,"params":{}}', '"dt" is not a list'),
    (b'{"seq":1,"ts":1,"dt":[[1]],"params":{}}', '"dt" is not a list'),
    (b'{"seq":1,"ts":1000000000000000000000000}', '"ts" is not a time'),
    (b'{"seq":1,"ts":-100000000000000000000000}', '"ts" is not a time'),
])
def test_bad_attachments_are_refused_with_the_reason(raw, problem):
    value, why = codec.check_attachment(raw)
    assert value == {} and problem in why
    assert codec.parse_attachment(raw) == {}


def test_good_attachments_pass():
    raw = codec.attachment(3, 17, {"a": [1, "[[[{"], "b": {"c": None}})
    assert codec.check_attachment(raw) == ({"seq": 3, "ts": 17, "params": {"a": [1, "[[[{"], "b": {"c": None}}}, None)
    assert codec.check_attachment(b"") == ({}, None)


@pytest.mark.parametrize("notice,problem", [
    ({"node": "tx", "outputs": {"data": "many"}}, "message counts"),
    ({"node": "tx", "outputs": {"data": -1}}, "message counts"),
    ({"node": "tx", "outputs": {"data": True}}, "message counts"),
    ({"node": "tx", "outputs": ["data"]}, "message counts"),
    ({"node": "other", "outputs": {"data": 1}}, "names node 'other'"),
])
def test_bad_end_of_stream_notices_are_refused(notice, problem):
    assert problem in codec.check_eos(json.dumps(notice).encode(), "tx")[1]


def test_signed_notices():
    body = json.dumps({"node": "tx", "outputs": {"data": 5}}).encode()
    assert codec.check_eos(body, "tx") == ({"node": "tx", "outputs": {"data": 5}}, None)
    signature = codec.sign("s3cret", body)
    assert codec.signed_by("s3cret", body, signature)
    assert not codec.signed_by("other", body, signature)
    assert not codec.signed_by("s3cret", body + b" ", signature)
    assert not codec.signed_by("s3cret", body, None)


def test_a_problem_s_kind_leaves_out_the_values_it_quotes():
    a = codec.problem_kind("notice names node 'x0', not 'tx' (its key's)")
    assert a == codec.problem_kind("notice names node 'x1999', not 'tx'") == "notice names node '…', not '…'"
