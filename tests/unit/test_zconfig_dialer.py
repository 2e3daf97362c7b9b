"""Which sessions let only the peer with the greater Zenoh id dial a peer gossip names:
those of a multi-machine part (``one_dialer``), the coordinator (``first_dialer``) and
authenticated ones. Never a session that does not auto-connect, and never by default: a tool
with it could not reach a planned node (``autoconnect=False``) whose id is greater
(tests/integration/test_machines.py, partition)."""
from __future__ import annotations

import json
import time

import pytest
import zenoh

from dora_zenoh.wire import zconfig


@pytest.fixture(autouse=True)
def _plain(monkeypatch):
    for var in ("DORA_ZENOH_ZENOH_CONFIG", "DORA_ZENOH_SECRET_FILE", "DORA_ZENOH_TLS"):
        monkeypatch.delenv(var, raising=False)


def _strategy(**kwargs) -> str:
    conf = zconfig.peer_config(["tcp/127.0.0.1:7"], ["tcp/127.0.0.1:0"], **kwargs)
    set_here = json.loads(conf.get_json("scouting/gossip/autoconnect_strategy"))  # null: Zenoh's default
    return set_here["peer"]["to_peer"] if set_here else "always"


@pytest.mark.parametrize(("kwargs", "strategy"), [
    ({}, "always"),
    ({"one_dialer": True}, "greater-zid"),
    ({"first_dialer": True}, "greater-zid"),
    ({"one_dialer": False, "autoconnect": False}, "always"),
])
def test_only_multi_machine_peers_let_the_greater_id_dial(kwargs, strategy):
    assert _strategy(**kwargs) == strategy


def test_the_first_dialer_links_to_every_peer_that_never_dials():
    """The coordinator (``first_dialer``) must reach planned nodes, which dial nobody gossip
    names: its id must rank above each of theirs, random as they are. With a random id of
    its own it would miss about half of them (all 8 linked: odds 1 in 256)."""
    hub_ep = zconfig.free_tcp_endpoint()
    sessions = [zenoh.open(zconfig.peer_config([], [hub_ep]))]
    try:
        first = zenoh.open(zconfig.peer_config([hub_ep], [zconfig.free_tcp_endpoint()], first_dialer=True))
        sessions.append(first)
        planned = [zenoh.open(zconfig.peer_config([hub_ep], [zconfig.free_tcp_endpoint()], autoconnect=False))
                   for _ in range(8)]
        sessions.extend(planned)
        wanted = {str(s.zid()) for s in planned}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not wanted <= {str(z) for z in first.info.peers_zid()}:
            time.sleep(0.1)
        assert wanted <= {str(z) for z in first.info.peers_zid()}, (
            f"first dialer {first.zid()} not linked to {wanted - {str(z) for z in first.info.peers_zid()}}")
    finally:
        for s in reversed(sessions):
            s.close()


def test_a_closed_runs_dialers_rank_first_and_its_planned_nodes_do_not():
    """In a closed run every session that auto-connects (runner, recorder, tools) ranks first, so
    each dials the planned nodes; a planned node (dials nobody) keeps a random id: ranked first
    too, a recorder would dial it only half the time (test_record's closed run lost everything)."""
    from dora_zenoh.wire import auth

    secret = auth.make_secret()
    try:
        for autoconnect, first in ((True, True), (False, False)):
            conf = zconfig.peer_config(["tcp/127.0.0.1:7"], ["tcp/127.0.0.1:0"], secret=str(secret),
                                       autoconnect=autoconnect)
            zid = json.loads(conf.get_json("id"))
            assert (zid is not None and zid.endswith("ffffffff")) is first, (autoconnect, zid)
    finally:
        auth.discard(secret)


def test_a_zenoh_error_is_told_without_its_rust_source_locations():
    """A real Zenoh error (a listener on a port that is taken) loses its "at /root/.cargo/...rs:N"
    parts, which a user cannot act on, and keeps what happened."""
    import socket

    import zenoh

    from dora_zenoh.wire import zconfig

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp/127.0.0.1:{taken.getsockname()[1]}"
        try:
            zenoh.open(zconfig.peer_config([], [endpoint])).close()
        except zenoh.ZError as exc:
            told = zconfig.reason(exc)
        else:
            raise AssertionError("Zenoh listened on a taken port")
    assert "Address already in use" in told and ".rs:" not in told and "/root/" not in told, told
