"""dora_zenoh.supervision.answers: commands answered on threads, counted until they are done.

Real Zenoh sessions on loopback: a queryable whose callback is ``Answers.on_query``, and a
second session that asks. The abort this guards against (a query deallocated after the
interpreter began to finalize) is tested as it happened, by test_coordinator -k answered_before.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
import zenoh

from dora_zenoh.errors import CommandError
from dora_zenoh.supervision.answers import Answers
from dora_zenoh.wire import zconfig

pytestmark = pytest.mark.timeout(60)


def _pair() -> tuple[zenoh.Session, zenoh.Session]:
    endpoint = zconfig.free_tcp_endpoint()
    server = zenoh.open(zconfig.peer_config([], [endpoint]))
    asker = zenoh.open(zconfig.peer_config([endpoint], []))
    assert zconfig.wait_for_peers(asker, 10)
    return server, asker


def test_wait_returns_once_every_answer_is_done_and_a_failed_reply_is_counted_too():
    started, release = threading.Event(), threading.Event()
    unhandled: list[BaseException | None] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: unhandled.append(args.exc_value)

    def command(verb: str, args: dict, _query: zenoh.Query) -> dict:
        if verb == "slow":
            started.set()
            release.wait(10)
        elif verb == "refused":
            raise CommandError("not yours")
        return {"verb": verb, **args}

    def reply_key(verb: str) -> str:
        # "broken": a key the query does not ask for, so the reply cannot leave (Zenoh raises
        # ZError, as when the asker left or the session closes)
        return "elsewhere/broken" if verb == "broken" else f"test/answers/{verb}"

    def ask(verb: str, timeout: float = 20) -> list[dict]:
        return [json.loads(r.ok.payload.to_bytes()) for r in asker.get(f"test/answers/{verb}", timeout=timeout)
                if r.ok is not None]

    server, asker = _pair()
    answers = Answers(command, reply_key, "test-answer")
    queryable = server.declare_queryable("test/answers/*", zenoh.handlers.Callback(answers.on_query, indirect=False))
    try:
        deadline = time.monotonic() + 10
        while not ask("ping", timeout=1):  # the asker learns of the queryable through its link
            assert time.monotonic() < deadline, "the asker never reached the queryable"
            time.sleep(0.02)
        replies: list[dict] = []
        asking = threading.Thread(target=lambda: replies.extend(ask("slow")))
        asking.start()
        assert started.wait(10), "the slow command never started"
        assert answers.wait(0.2) is False  # one in flight: wait gives up after its timeout
        release.set()
        assert answers.wait(10) is True
        asking.join(20)
        assert replies == [{"ok": True, "verb": "slow"}]
        assert ask("refused") == [{"ok": False, "error": "not yours"}]

        assert ask("broken", timeout=5) == []  # nobody replies: the reply could not leave
        assert answers.wait(10) is True
        assert unhandled == [], unhandled  # the ZError was the thread's own business, not a crash
    finally:
        threading.excepthook = previous_hook
        release.set()
        queryable.undeclare()
        asker.close()
        server.close()
