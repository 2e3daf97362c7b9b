"""A node leaves cleanly: no SIGABRT at interpreter exit, no thread of ours left in Zenoh.

The fault (issue 19, point 6): a node of a 60-node chain died with SIGABRT ("FATAL:
exception not rethrown") after STOP. A core dump showed a ``dora-zenoh-confirm`` helper
thread (it asks the runner whether an ``exited``/``stop`` token is true) iterating a
Zenoh query's replies while the interpreter finalized; CPython ends such a thread with
``pthread_exit``, and the unwind through Rust aborts. See docs/design/shutdown.md.
"""
from __future__ import annotations

import json
import threading
import time

import psutil
import pytest
import zenoh
from conftest import wait_for

from dora_zenoh.wire import zconfig

NODES = 8
HELPERS = ("dora-zenoh-gone", "dora-zenoh-confirm", "dora-zenoh-count")

# Closes its node once the file "go" exists, then records which of the node's helper
# threads still run (none may: they call Zenoh, and the interpreter is about to finalize).
NODE = f"""
    import json, os, threading, time
    from dora import Node
    node = Node()
    me = os.environ["DORA_NODE_ID"]
    open(f"ready-{{me}}", "w").write("1")
    while not os.path.exists("go"):
        time.sleep(0.01)
    node.close()
    left = sorted(t.name for t in threading.enumerate() if t.name in {HELPERS!r} and t.is_alive())
    json.dump(left, open(f"left-{{me}}.json", "w"))
"""


def _churn(session: zenoh.Session, live_root: str, stop: threading.Event) -> None:
    """Declare a new `exited/ghost<i>` token every 50 ms: each one makes every node start a
    helper thread that queries the runner for up to 3 s (the runner does not confirm it)."""
    tokens = []
    i = 0
    try:
        while not stop.is_set():
            tokens.append(session.liveliness().declare_token(f"{live_root}/exited/ghost{i}"))
            i += 1
            stop.wait(0.05)
    finally:
        for token in tokens:
            token.undeclare()


@pytest.mark.timeout(150)
def test_nodes_exit_cleanly_while_their_helpers_query_zenoh(flow):
    """NODES nodes close while their helper threads query Zenoh (forged tokens keep
    coming): every node exits without SIGABRT, its close() returns with none of its helper
    threads still running, and the run succeeds with no close failure."""
    flow.write("dataflow.yml", "nodes:\n" + "".join(f"  - id: n{i}\n    path: node.py\n" for i in range(NODES)))
    flow.write("node.py", NODE)
    proc = flow.start()
    stop = threading.Event()
    churn = None
    session = None
    try:
        wait_for(lambda: all((flow.folder / f"ready-n{i}").exists() for i in range(NODES)) or proc.poll() is not None,
                 90, "the nodes")
        session = zenoh.open(zconfig.peer_config([flow.endpoint], []))
        churn = threading.Thread(target=_churn, args=(session, f"dora/@dz/live/{flow.name}", stop))
        churn.start()
        time.sleep(0.5)  # the first tokens reach the nodes: their helpers are querying now
        (flow.folder / "go").write_text("1")
        out, err = proc.communicate(timeout=90)
    finally:
        stop.set()
        if churn is not None:
            churn.join(10)
        if session is not None:
            session.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "SIGABRT" not in err and "FATAL" not in err and "panicked" not in err, err[-3000:]
    assert "did not close cleanly" not in err + out, err[-3000:]
    assert proc.returncode == 0, err[-3000:]
    for i in range(NODES):
        assert json.loads((flow.folder / f"left-n{i}.json").read_text()) == [], f"n{i}"


# A process whose thread keeps calling Zenoh through interpreter exit: on its own, this
# aborts about one run in two. With a hazard recorded, the last atexit handler ends it.
LAST_RESORT = """
    import atexit, sys, threading, zenoh
    from dora_zenoh.node import shutdown
    from dora_zenoh.wire import zconfig
    session = zenoh.open(zconfig.peer_config([], []))
    def hammer():
        while True:
            try:
                session.put("dz-test/hammer", b"1")
            except zenoh.ZError:
                pass
    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    shutdown.hazard("a thread that calls Zenoh", still=thread.is_alive)
    log = open("buffered.txt", "w")
    log.write("kept")  # never closed nor flushed by the script
    atexit.register(lambda: open("atexit.txt", "w").write("ran"))
    if sys.argv[1] == "raise":
        raise RuntimeError("the script failed")
"""


@pytest.mark.timeout(120)
def test_last_resort_exit_keeps_atexit_files_and_status(tmp_path):
    """When something may still call Python from Zenoh at exit, the process ends with
    os._exit after the script's atexit handlers, with its files flushed, status 0 after a
    normal end and 1 after an uncaught exception, and never SIGABRT (5 runs of each)."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "last_resort.py"
    script.write_text(textwrap.dedent(LAST_RESORT))
    for how, status in (("end", 0), ("raise", 1)):
        for _ in range(5):
            for name in ("buffered.txt", "atexit.txt"):
                (tmp_path / name).unlink(missing_ok=True)
            res = subprocess.run([sys.executable, str(script), how], cwd=tmp_path, capture_output=True, text=True,
                                 timeout=60)
            assert res.returncode == status, (how, res.returncode, res.stderr[-2000:])
            assert (tmp_path / "atexit.txt").read_text() == "ran"
            assert (tmp_path / "buffered.txt").read_text() == "kept"
            assert ("the script failed" in res.stderr) == (how == "raise"), res.stderr[-2000:]


def test_processes_a_node_started_end_with_it_on_a_clean_stop(flow):
    """A node starts a process of its own (a helper, a driver) and ends on STOP without
    stopping it: the process was left running, reparented to init (a helper's run: only a
    SIGKILLed runner's reaper ended such processes). The runner now ends what is left of the
    node's process group when the node exits, and says so in its log."""
    flow.write("dataflow.yml", """
        nodes:
          - {id: worker, path: worker.py, inputs: {t: dora/timer/millis/100}}
    """)
    flow.write("worker.py", """
        import subprocess
        from dora import Node
        child = subprocess.Popen(["sleep", "300"])
        open("child.pid", "w").write(str(child.pid))
        node = Node()
        for event in node:
            pass
    """)
    res = flow.run("--stop-after", "2s")
    assert res.returncode == 0, res.stderr
    pid = int((flow.folder / "child.pid").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, "the child outlived its node"
    assert "node 'worker' left processes of its own running when it exited: stopped them" in res.stderr + res.stdout
