"""wire/keys.py: every key function, and that user-data patterns never reach internal keys."""
from __future__ import annotations

import pytest
import zenoh

from dora_zenoh.wire import keys

P, D, N = "dora", "flow", "cam"

INTERNAL_KEYS = {
    "live_root": keys.live_root(P, D),
    "node_token": keys.node_token(P, D, N),
    "exited_token": keys.exited_token(P, D, N),
    "sent_token": keys.sent_token(P, D, N, "image", 42),
    "stop_token": keys.stop_token(P, D),
    "ready_token": keys.ready_token(P, D, "ab12"),
    "runner_token": keys.runner_token(P, D),
    "eos_key": keys.eos_key(P, D, N),
    "flush_key": keys.flush_key(P, D, N),
    "config_key": keys.config_key(P, D, N),
    "stats_key": keys.stats_key(P, D, N),
    "wake_key": keys.wake_key(P, D, N, "abc123"),
    "ctl_key": keys.ctl_key("start"),
    "coordinator_token": keys.coordinator_token(),
    "log_key": keys.log_key(D, N),
    "done_key": keys.done_key(D),
    "block_key": keys.block_key(P, D, f"{N}/image"),
    "ack_key": keys.ack_key(P, D, N, "viewer"),
    "facts_key": keys.facts_key(P, D),
    "stop_request_key": keys.stop_request_key(P, D),
    "daemon_token": keys.daemon_token("robot"),
    "daemon_ctl_key": keys.daemon_ctl_key("robot", "spawn"),
    "daemon_state_key": keys.daemon_state_key("robot"),
    "files_key": keys.files_key("7f3a", "ab12", "0"),
}


def test_every_key_function_is_covered():
    public = {name for name in dir(keys) if not name.startswith("_") and callable(getattr(keys, name))}
    assert public - {"annotations"} == set(INTERNAL_KEYS) | {"data_key"}


def test_data_key_is_prefix_dataflow_source():
    assert keys.data_key(P, D, "cam/image") == "dora/flow/cam/image"
    assert keys.data_key("robot", D, "rt/op/out") == "robot/flow/rt/op/out"


@pytest.mark.parametrize(("name", "expected"), [
    ("live_root", "dora/@dz/live/flow"),
    ("node_token", "dora/@dz/live/flow/node/cam"),
    ("exited_token", "dora/@dz/live/flow/exited/cam"),
    ("sent_token", "dora/@dz/live/flow/sent/cam/image/42"),
    ("stop_token", "dora/@dz/live/flow/stop"),
    ("ready_token", "dora/@dz/live/flow/ready/ab12"),
    ("runner_token", "dora/@dz/live/flow/runner"),
    ("eos_key", "dora/@dz/eos/flow/cam"),
    ("flush_key", "dora/@dz/flush/flow/cam"),
    ("config_key", "dora/@dz/cfg/flow/cam"),
    ("stats_key", "dora/@dz/stats/flow/cam"),
    ("wake_key", "dora/@dz/wake/flow/cam/abc123"),
    ("ctl_key", "dora/@dz/ctl/start"),
    ("daemon_token", "dora/@dz/daemon/robot"),
    ("daemon_ctl_key", "dora/@dz/daemon/robot/ctl/spawn"),
    ("daemon_state_key", "dora/@dz/daemon/robot/state"),
    ("files_key", "dora/@dz/files/7f3a/ab12/0"),
    ("coordinator_token", "dora/@dz/coordinator"),
    ("log_key", "dora/@dz/log/flow/cam"),
    ("done_key", "dora/@dz/done/flow"),
    ("block_key", "dora/@dz/blk/flow/cam/image"),
    ("ack_key", "dora/@dz/ack/flow/cam/viewer"),
    ("facts_key", "dora/@dz/facts/flow"),
    ("stop_request_key", "dora/@dz/stopreq/flow"),
])
def test_internal_keys(name, expected):
    assert INTERNAL_KEYS[name] == expected
    assert zenoh.KeyExpr(expected)  # a valid key expression
    assert expected.split("/")[1] == keys.INTERNAL


@pytest.mark.parametrize("key", sorted(INTERNAL_KEYS.values()))
@pytest.mark.parametrize("pattern", ["dora/**", "dora/*/**", "dora/flow/**", "dora/*/cam/*", "**"])
def test_user_data_patterns_never_match_internal_keys(pattern, key):
    """``@dz`` is a verbatim chunk: ``*`` and ``**`` never match it, so ``dora/**`` is user data only."""
    assert not zenoh.KeyExpr(pattern).intersects(zenoh.KeyExpr(key))


def test_user_data_patterns_match_data_keys():
    data = zenoh.KeyExpr(keys.data_key(P, D, "cam/image"))
    assert zenoh.KeyExpr("dora/**").intersects(data)
    assert zenoh.KeyExpr("dora/flow/*/image").intersects(data)


def test_internal_patterns_that_name_the_chunk_do_match():
    assert zenoh.KeyExpr(keys.live_root(P, D) + "/**").intersects(zenoh.KeyExpr(keys.node_token(P, D, N)))
    assert zenoh.KeyExpr(keys.config_key(P, "*", N)).intersects(zenoh.KeyExpr(keys.config_key(P, D, N)))
    assert not zenoh.KeyExpr(keys.config_key(P, "other", N)).intersects(zenoh.KeyExpr(keys.config_key(P, D, N)))
