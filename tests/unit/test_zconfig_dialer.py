"""Which sessions let only the peer with the greater Zenoh id dial a peer gossip names:
those of a multi-machine part (``one_dialer``) and authenticated ones. Never a session that
does not auto-connect, and never by default: a tool with it could not reach a planned node
(``autoconnect=False``) whose id is greater (tests/integration/test_machines.py, partition)."""
from __future__ import annotations

import json

import pytest

from dora_zenoh.wire import zconfig


def _strategy(**kwargs) -> str:
    conf = zconfig.peer_config(["tcp/127.0.0.1:7"], ["tcp/127.0.0.1:0"], **kwargs)
    set_here = json.loads(conf.get_json("scouting/gossip/autoconnect_strategy"))  # null: Zenoh's default
    return set_here["peer"]["to_peer"] if set_here else "always"


@pytest.mark.parametrize(("kwargs", "strategy"), [
    ({}, "always"),
    ({"one_dialer": True}, "greater-zid"),
    ({"one_dialer": False, "autoconnect": False}, "always"),
])
def test_only_multi_machine_peers_let_the_greater_id_dial(monkeypatch, kwargs, strategy):
    for var in ("DORA_ZENOH_ZENOH_CONFIG", "DORA_ZENOH_SECRET_FILE", "DORA_ZENOH_TLS"):
        monkeypatch.delenv(var, raising=False)
    assert _strategy(**kwargs) == strategy
