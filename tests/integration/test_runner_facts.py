"""A node hears its own runner's ``facts`` when another machine's runner answers on the same key.

Every machine's part of a dataflow runs a runner whose ``facts`` queryable answers on one key.
With Zenoh's default query consolidation a node got one reply per key, the last to arrive: the
far runner's, which it ignores as not its own. Its own runner's ``stop`` was then never
confirmed and every node was killed at the end of the grace period on each ``stop`` across
machines. Plain Zenoh sessions on loopback (no root): the far runner answers 0.2 s after the
node's own, so the default consolidation would drop the own runner's reply every time.
"""
from __future__ import annotations

import json
import time

import pytest
import zenoh

from dora_zenoh.node import peers
from dora_zenoh.wire import keys, zconfig

pytestmark = pytest.mark.timeout(60)


def _facts_runner(listen: str, delay: float) -> tuple[zenoh.Session, zenoh.Queryable]:
    session = zenoh.open(zconfig.peer_config([], [listen], autoconnect=False))
    key = keys.facts_key("dora", "facts-test")

    def reply(query: zenoh.Query) -> None:
        time.sleep(delay)
        query.reply(key, json.dumps({"stop": True, "exited": [], "sent": {}}))

    return session, session.declare_queryable(key, reply)


def test_a_node_gets_every_runners_facts_reply(endpoint: str) -> None:
    far_endpoint = zconfig.free_tcp_endpoint()
    own, own_q = _facts_runner(endpoint, 0.0)
    far, far_q = _facts_runner(far_endpoint, 0.2)
    node = zenoh.open(zconfig.peer_config([endpoint, far_endpoint], [], autoconnect=False))
    try:
        deadline = time.monotonic() + 30
        while len(list(node.info.peers_zid())) < 2:  # linked to both runners (bounded)
            assert time.monotonic() < deadline, "the node's session did not link to both runners"
            time.sleep(0.05)
        repliers: set[str] = set()
        for _ in range(20):  # until both queryables are known to the node's session (bounded)
            repliers = {peers._replier(r) for r in peers._ask_every_runner(node, keys.facts_key("dora", "facts-test"))
                        if r.ok is not None}
            if len(repliers) == 2:
                break
        assert repliers == {str(own.info.zid()), str(far.info.zid())}, repliers
    finally:
        node.close()
        for q in (own_q, far_q):
            q.undeclare()
        own.close()
        far.close()
