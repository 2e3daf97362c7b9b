"""A replayed output's sender survives a reader that stalls during a burst of large messages.

The sender of an output that a ``queue_policy: block`` reader on another machine reads uses
Zenoh's advanced publisher, whose heartbeat task publishes on the same priority as the data.
While a ``BLOCK`` put waits for room (a slow link, a stalled reader), it holds that priority's
queue lock; the heartbeat then waits for the lock on a Zenoh thread. With the one-thread runtime
that the runner gives other nodes, that thread is also the one that sends (and so frees room):
nothing moves until Zenoh gives up on the put after 5 s and closes the link, losing what was
queued (the cross-machine 1 MiB burst stall of docs/machines.md). So the runner gives such a
node Zenoh's own runtime (``zconfig.tune_node_env``), and the data its own priority
(``replay.PRIORITY``); since the latter, this test passes on the one thread too, so it guards the
pair. It runs a sender with the environment the runner gives it: dora-zenoh's replay
publisher, 1 MiB messages, and a reader
whose callback stalls 2 s (so the sender's put waits and the heartbeat fires meanwhile). Every
message must arrive, in order, on one link. Loopback, shared memory off (so the bytes go
through TCP, as between machines).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import zenoh

from dora_zenoh import settings
from dora_zenoh.wire import zconfig

pytestmark = pytest.mark.timeout(120)

KEY = "dora/replayruntime/src/out"
COUNT = 40
SIZE = 1 << 20
STALL_S = 2.0

SENDER = textwrap.dedent("""
    import sys, time
    import zenoh
    from dora_zenoh.node import replay
    from dora_zenoh.wire import zconfig

    endpoint, key, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with zenoh.open(zconfig.peer_config(connect=[endpoint], listen=[])) as session:
        pub = replay.declare_publisher(session, key, congestion_control=zenoh.CongestionControl.BLOCK)
        deadline = time.monotonic() + 30
        while not pub.matching_status.matching and time.monotonic() < deadline:
            time.sleep(0.05)
        for i in range(count):
            pub.put(i.to_bytes(4, "big") + bytes(size - 4))
        print("sent", flush=True)
        sys.stdin.readline()  # the test says when it has what it needs (or gave up)
""")


def _reader(endpoint: str) -> zenoh.Session:
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/delay", "0")
    conf.insert_json5("transport/shared_memory/enabled", "false")
    conf.insert_json5("listen/endpoints", json.dumps([endpoint]))
    return zenoh.open(conf)


def test_replayed_sender_keeps_its_link_through_a_stalled_reader(tmp_path: Path) -> None:
    endpoint = zconfig.free_tcp_endpoint()
    env = {k: v for k, v in os.environ.items() if k != settings.ZENOH_RUNTIME.name}
    env[settings.SHM.name] = "0"
    # What the runner gives a node with a replayed output (and no block input).
    zconfig.tune_node_env(env, blocking_input=False, replayed_output=True)
    got: list[int] = []
    done = threading.Event()
    stalled = threading.Event()

    def on_sample(sample: zenoh.Sample) -> None:
        if not stalled.is_set():
            stalled.set()
            time.sleep(STALL_S)  # a stalled reader: this link is not read meanwhile
        got.append(int.from_bytes(sample.payload.to_bytes()[:4], "big"))
        if len(got) >= COUNT:
            done.set()

    with _reader(endpoint) as session:
        sub = session.declare_subscriber(KEY, zenoh.handlers.Callback(on_sample, indirect=False))
        # Where the advanced publisher's heartbeats go (a recovering reader subscribes there):
        # without a subscriber, Zenoh sends them nowhere and they never wait for the lock.
        beats = session.declare_subscriber(f"{KEY}/@adv/pub/**", lambda _sample: None)
        sender = subprocess.Popen([sys.executable, "-c", SENDER, endpoint, KEY, str(COUNT), str(SIZE)],
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            # Generous: the burst takes well under a second once the reader reads again; a
            # closed link (the fault) never brings the lost messages back.
            done.wait(60)
        finally:
            try:
                out, err = sender.communicate("\n", timeout=30)
            except subprocess.TimeoutExpired:
                sender.kill()
                out, err = sender.communicate()
            sub.undeclare()
            beats.undeclare()
    assert stalled.is_set(), f"the reader got nothing: {err[-2000:]}"
    assert got == list(range(COUNT)), (
        f"the reader got {len(got)} of {COUNT} messages (first missing: "
        f"{next((i for i in range(COUNT) if i not in got), None)}); sender: {out!r} {err[-2000:]}")
