"""Nodes forked from the fork server (zygote) are indistinguishable from nodes started with Popen.

Each test runs the same dataflow with ``DORA_ZENOH_FORKSERVER=0`` and ``=1`` where it can and
compares what the nodes saw of themselves; a node tells whether it was forked by comparing
its parent with the runner (``DORA_RUN_PARENT_PID``: a forked node's parent is the zygote).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import long_lived_pids, start_cli, wait_for, write_long_lived_flow

from dora_zenoh.supervision.forkserver import eligible_command, startup_env

FINGERPRINT = """
    import os
    FDS = sorted(os.listdir("/proc/self/fd"))  # before any import of ours
    import re
    GLOBALS = [(k, re.sub(" at 0x[0-9a-f]+", "", repr(v))) for k, v in dict(globals()).items() if k != "FDS"]
    import json, signal, sys, threading
    GLOBALS.append(("loader", (type(__loader__).__name__, __loader__.name, __loader__.path)))
    from dora import Node
    node = Node()
    print("out-1"); print("err-1", file=sys.stderr); print("out-2"); print("err-2", file=sys.stderr)
    me = os.environ["DORA_NODE_ID"]
    json.dump({
        "forked": os.getppid() != int(os.environ["DORA_RUN_PARENT_PID"]),
        "argv": sys.argv, "orig_argv": sys.orig_argv, "path0": sys.path[0], "cwd": os.getcwd(),
        "executable": sys.executable, "name": __name__, "file": __file__,
        "main_file": sys.modules["__main__"].__file__, "flags": str(sys.flags), "stdio": [(s.write_through, type(s.buffer).__name__, s.encoding, s.line_buffering) for s in (sys.stdout, sys.stderr)],
        "session_leader": os.getsid(0) == os.getpid(), "pgrp_leader": os.getpgrp() == os.getpid(),
        "stdin": os.readlink("/proc/self/fd/0"),
        "stdout_pipe": os.readlink("/proc/self/fd/1").startswith("pipe:"),
        "stderr_pipe": os.readlink("/proc/self/fd/2").startswith("pipe:"),
        "cpus": sorted(os.sched_getaffinity(0)),
        "signals": {s: str(signal.getsignal(getattr(signal, s))) for s in ("SIGTERM", "SIGINT", "SIGPIPE", "SIGCHLD", "SIGHUP")},
        "blocked": sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "yaml_env": os.environ.get("FROM_YAML"), "zygote_env": "JE_ARROW_MALLOC_CONF" in os.environ,
        "c_env": __import__("ctypes").CDLL(None).getenv(b"FROM_YAML") != 0,
        "threads_main": threading.current_thread() is threading.main_thread(),
        "umask": os.umask(0o22), "fds": FDS,
        "cmdline": [a.decode() for a in (lambda d: d.rstrip(b"\\0").split(b"\\0" if b"\\0" in d.rstrip(b"\\0") else b" "))(
            open("/proc/self/cmdline", "rb").read())], "globals": GLOBALS,
    }, open(f"fp-{me}-{os.environ['MODE']}.json", "w"), sort_keys=True)
"""

ENDINGS = {
    "ok.py": "from dora import Node\nNode()\nprint('fine')\n",
    "code3.py": "import sys\nfrom dora import Node\nNode()\nsys.exit(3)\n",
    "message.py": "import sys\nsys.exit('giving up: no camera')\n",
    "boom.py": "def inner():\n    raise ValueError('boom')\n\ndef outer():\n    inner()\n\nouter()\n",
    "interrupted.py": "raise KeyboardInterrupt\n",
    "killed.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
}


def _env(mode: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DORA_ZENOH_FORKSERVER": mode, "MODE": mode, **extra}


def _node_lines(output: str, node: str) -> list[str]:
    """What ``node`` printed (dora-zenoh's own notices, which load may cause, left out)."""
    return [line[len(node) + 3:] for line in output.splitlines()
            if line.startswith(f"[{node}] ") and not line.startswith(f"[{node}] [dora-zenoh]")]


@pytest.mark.timeout(180)
def test_forked_node_sees_what_a_popen_node_sees(flow):
    """argv, cwd, environment, session, stdio, CPU mask, signal handlers: the same either way."""
    flow.write("dataflow.yml", """
        nodes:
          - id: plain
            path: sub/fp.py
            args: --one two
            env:
              FROM_YAML: "yes"
          - id: pinned
            path: sub/fp.py
            cpu_affinity: "0"
          - id: interp
            custom:
              source: python3
              args: sub/fp.py three
          - id: rt
            operators:
              - id: op
                python: op.py
                inputs:
                  tick: dora/timer/millis/50
    """)
    flow.write("sub/fp.py", FINGERPRINT)
    # the operator runtime (python -m): what its process saw, from its operator's import
    flow.write("op.py", """
        import json, os, sys
        import __main__
        json.dump({"forked": os.getppid() != int(os.environ["DORA_RUN_PARENT_PID"]), "argv": sys.argv,
                   "orig_argv": sys.orig_argv, "path0": sys.path[0], "main_file": __main__.__file__,
                   "main_spec": __main__.__spec__.name, "flags": str(sys.flags)},
                  open(f"fp-rt-{os.environ['MODE']}.json", "w"), sort_keys=True)

        class Operator:
            def on_event(self, event, send_output):
                return 1  # STOP: the runtime ends
    """)
    seen = {}
    for mode in ("0", "1"):
        res = flow.run(env=_env(mode))
        assert res.returncode == 0, res.stdout + res.stderr
        assert "fork server" not in res.stderr, res.stderr  # no fallback warning
        for node in ("plain", "pinned", "interp"):
            seen[node, mode] = json.loads((flow.folder / f"fp-{node}-{mode}.json").read_text())
            assert _node_lines(res.stdout, node) == ["out-1", "out-2"]
            assert _node_lines(res.stderr, node) == ["err-1", "err-2"]
    for mode in ("0", "1"):
        seen["rt", mode] = json.loads((flow.folder / f"fp-rt-{mode}.json").read_text())
    for node in ("plain", "pinned", "interp", "rt"):
        popen, forked = seen[node, "0"], seen[node, "1"]
        assert popen.pop("forked") is False and forked.pop("forked") is True, node
        assert popen == forked, node
    assert seen["plain", "1"]["argv"][1:] == ["--one", "two"] and seen["plain", "1"]["yaml_env"] == "yes"
    assert seen["pinned", "1"]["cpus"] == [0]
    assert seen["plain", "1"]["session_leader"] and seen["plain", "1"]["stdin"] == "/dev/null"


@pytest.mark.timeout(180)
def test_exit_codes_and_tracebacks_are_the_same(flow):
    """SystemExit codes and messages, an uncaught exception (traceback, exit 1), KeyboardInterrupt
    and death by a signal end a forked node exactly as they end a separate interpreter."""
    flow.write("dataflow.yml", "nodes:\n" + "".join(f"  - id: {n[:-3]}\n    path: {n}\n" for n in ENDINGS))
    for name, text in ENDINGS.items():
        flow.write(name, text)
    outputs = {}
    for mode in ("0", "1"):
        res = flow.run(env=_env(mode))
        assert res.returncode != 0
        outputs[mode] = res
        assert "fork server" not in res.stderr, res.stderr
    for node in (n[:-3] for n in ENDINGS):
        assert _node_lines(outputs["0"].stderr, node) == _node_lines(outputs["1"].stderr, node), node
        assert _node_lines(outputs["0"].stdout, node) == _node_lines(outputs["1"].stdout, node), node
        endings = [[line for line in outputs[m].stderr.splitlines() if line.startswith(f"[dora-zenoh] node '{node}' ")]
                   for m in ("0", "1")]
        assert endings[0] == endings[1] and (endings[0] or node == "ok"), node
    err = outputs["1"].stderr
    assert "node 'code3' exited with code 3" in err
    assert "[message] giving up: no camera" in err
    assert "[boom]     raise ValueError('boom')" in err and "[boom] ValueError: boom" in err
    assert "runpy" not in err and "zygote" not in err
    assert "node 'interrupted' was killed by signal SIGINT" in err
    assert "node 'killed' was killed by signal SIGKILL" in err
    assert "[ok] fine" in outputs["1"].stdout


@pytest.mark.timeout(180)
def test_stop_signals_and_process_trees(flow):
    """STOP reaches a forked node; a node that never joins gets SIGTERM (default disposition in
    the child, though the zygote ignores it); a stubborn node's whole tree is killed after the
    grace period, its grandchild included."""
    flow.write("dataflow.yml", """
        nodes:
          - id: polite
            path: polite.py
          - id: silent
            path: silent.py
          - id: stubborn
            path: stubborn.py
    """)
    flow.write("polite.py", """
        from dora import Node
        node = Node()
        open("polite.ready", "w").write("1")
        for event in node:
            if event["type"] == "STOP":
                print("polite got STOP")
                break
    """)
    flow.write("silent.py", "import time\nopen('silent.pid', 'w').write('1')\ntime.sleep(600)\n")
    flow.write("stubborn.py", """
        import os, signal, subprocess, time
        from dora import Node
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        node = Node()
        child = subprocess.Popen(["sleep", "600"])
        open("grandchild.pid", "w").write(str(child.pid))
        while True:
            time.sleep(0.5)
    """)
    proc = start_cli("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint, "--grace", "2s",
                     cwd=flow.folder, env=_env("1"))
    try:
        wait_for(lambda: all((flow.folder / f).exists() for f in ("polite.ready", "silent.pid", "grandchild.pid"))
                 or proc.poll() is not None, 60, "the nodes to start")
        time.sleep(1.0)  # the runner hears polite's token (else it would SIGTERM it as a silent node)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: STOP
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert "[polite] polite got STOP" in res.stdout, res.stdout + res.stderr
    logs = next((flow.folder / "out").iterdir())
    assert "node 'silent' was stopped (it does not use the node API, so it got SIGTERM)" in (
        logs / "log_silent.txt").read_text()
    assert "node 'stubborn' did not stop within the 2 s grace period and was killed" in res.stderr, res.stderr
    grandchild = int((flow.folder / "grandchild.pid").read_text())
    wait_for(lambda: not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie",
             20, "the stubborn node's child to be gone")
    assert "fork server" not in res.stderr, res.stderr


def start_forked_long_lived(flow) -> tuple[subprocess.Popen, list[int], int]:
    """`run` of the long-lived flow with the fork server forced on: the runner, the nodes' pids
    and the zygote's (their parent)."""
    write_long_lived_flow(flow)
    proc = start_cli("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint,
                     cwd=flow.folder, env=_env("1"))
    try:
        pids = long_lived_pids(flow)
        zygote = psutil.Process(pids[0]).ppid()
        assert zygote != proc.pid, "the python node was not forked"
    except BaseException:
        proc.kill()
        raise
    return proc, pids, zygote


@pytest.mark.timeout(120)
def test_no_orphans_when_run_is_killed_with_forked_nodes(flow):
    """SIGKILL the runner: the forked nodes (and their children) and the zygote all go."""
    proc, pids, zygote = start_forked_long_lived(flow)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        procs = [psutil.Process(p) for p in [*pids, zygote] if psutil.pid_exists(p)]
        _, alive = psutil.wait_procs(procs, timeout=60)  # the reaper's grace periods, on a loaded machine
        assert not alive, f"left running: {alive}"
    finally:
        proc.kill()


@pytest.mark.timeout(120)
def test_a_dying_zygote_takes_its_nodes_and_the_run_says_so(flow):
    """SIGKILL the zygote: its nodes die with it (PR_SET_PDEATHSIG), the run reports them as
    killed and warns once; nothing is left running."""
    proc, pids, zygote = start_forked_long_lived(flow)
    try:
        os.kill(zygote, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == "zombie",
                 30, "the forked node to die with its zygote")
        proc.send_signal(signal.SIGINT)  # the shell node is not forked: stop the run
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "node 'py' was killed by signal SIGKILL" in err, err
    assert err.count("fork server: it ended unexpectedly") == 1, err
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=30)
    assert not alive, f"left running: {alive}"


@pytest.mark.timeout(120)
def test_nodes_that_differ_start_with_popen(flow):
    """Only this interpreter, with the zygote's start-up environment, is forked: a node whose
    environment changes interpreter start-up, a `-c`/other-flag command and a shell node are
    started with Popen, silently, next to forked ones."""
    flow.write("dataflow.yml", """
        nodes:
          - id: forked
            path: who.py
          - id: hashseed
            path: who.py
            env:
              PYTHONHASHSEED: "7"
          - id: optimized
            custom:
              source: python
              args: -O who.py
          - id: shadowed
            path: shadow/who.py
          - id: big
            path: who.py
            env: {BIG_ENV}
          - id: shell
            path: shell
            args: echo "$DORA_NODE_ID $PPID $DORA_RUN_PARENT_PID" > who-shell.txt
    """)
    # more than one request to the zygote may hold (1 MiB): that node starts with Popen
    big = "{" + ", ".join(f"BIG{i}: {'x' * 120_000}" for i in range(9)) + "}"
    flow.yaml.write_text(flow.yaml.read_text().replace("{BIG_ENV}", big))
    flow.write("who.py", """
        import os
        me = os.environ["DORA_NODE_ID"]
        open(f"who-{me}.txt", "w").write(str(os.getppid() != int(os.environ["DORA_RUN_PARENT_PID"])))
    """)
    # a module of its own named like one the zygote imported (Popen would import this one)
    flow.write("shadow/who.py", "import os, json\nopen(f'who-shadowed.txt', 'w').write(json.MINE)\n")
    flow.write("shadow/json.py", "import os\nMINE = str(os.getppid() != int(os.environ['DORA_RUN_PARENT_PID']))\n")
    res = flow.run(env=_env("1"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fork server" not in res.stderr
    nodes = ("forked", "hashseed", "optimized", "big", "shadowed")
    forked = {n: (flow.folder / f"who-{n}.txt").read_text() for n in nodes}
    assert forked == {"forked": "True", "hashseed": "False", "optimized": "False", "big": "False",
                      "shadowed": "False"}


@pytest.mark.timeout(120)
def test_a_zygote_that_cannot_fork_safely_is_not_used(flow, tmp_path):
    """A zygote with a second thread after its imports (here a sitecustomize starts one) is not
    safe to fork: the run says so once and starts every node with Popen."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n")
    flow.write("dataflow.yml", "nodes:\n" + "".join(f"  - id: n{i}\n    path: who.py\n" for i in range(3)))
    flow.write("who.py", """
        import os
        me = os.environ["DORA_NODE_ID"]
        open(f"who-{me}.txt", "w").write(str(os.getppid() != int(os.environ["DORA_RUN_PARENT_PID"])))
    """)
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    res = flow.run(env=_env("1", PYTHONPATH=pythonpath))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stderr.count("fork server:") == 1, res.stderr
    assert "threads" in res.stderr
    assert {(flow.folder / f"who-n{i}.txt").read_text() for i in range(3)} == {"False"}


CHAIN = 24
COUNT = 20


@pytest.mark.timeout(240)
def test_chain_of_24_forked_nodes(flow):
    """A 24-node chain started through the fork server (``auto``: 16 Python nodes or more)
    delivers every message at every hop, and every node was forked."""
    lines = ["nodes:", "  - id: n0", "    path: relay.py", "    outputs: [out]", "    env: {SOURCE: '1'}"]
    for i in range(1, CHAIN):
        lines += [f"  - id: n{i}", "    path: relay.py", "    inputs:",
                  f"      in: {{source: n{i - 1}/out, queue_size: 100}}"]
        if i < CHAIN - 1:
            lines += ["    outputs: [out]"]
    flow.write("dataflow.yml", "\n".join(lines) + "\n")
    flow.write("relay.py", f"""
        import json, os
        from dora import Node
        node = Node()
        me = os.environ["DORA_NODE_ID"]
        forked = os.getppid() != int(os.environ["DORA_RUN_PARENT_PID"])
        got = []
        if os.environ.get("SOURCE"):
            for i in range({COUNT}):
                node.send_output("out", str(i).encode())
        else:
            for event in node:
                if event["type"] == "INPUT":
                    got.append(bytes(event["value"].to_numpy()).decode())
                    if me != "n{CHAIN - 1}":
                        node.send_output("out", event["value"])
        json.dump({{"got": got, "forked": forked}}, open(f"out-{{me}}.json", "w"))
    """)
    env = {k: v for k, v in os.environ.items() if k != "DORA_ZENOH_FORKSERVER"}
    res = flow.run("--quiet", timeout=200, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    expected = [str(i) for i in range(COUNT)]
    for i in range(CHAIN):
        report = json.loads((flow.folder / f"out-n{i}.json").read_text())
        assert report["forked"], f"n{i} was not forked"
        if i:
            assert report["got"] == expected, f"n{i}"


def test_which_commands_can_be_forked():
    """The decision itself: this interpreter (by path or by a python name on PATH), `-u` only,
    a script or the operator runtime; the environment compared on start-up variables only."""
    exe = sys.executable
    env = {"PATH": os.path.dirname(exe) + os.pathsep + os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
    assert eligible_command([exe, "-u", "a.py", "x"], env) == {"script": "a.py", "args": ["x"], "executable": exe}
    assert eligible_command([exe, "-u", "-m", "dora_zenoh.operators.runtime"], env)["module"]
    assert eligible_command(["python3", "a.py"], env)["executable"].startswith(os.path.dirname(exe))
    for argv in ([exe, "-O", "a.py"], [exe, "-c", "pass"], [exe, "-m", "http.server"], ["/bin/sh", "a.py"],
                 [exe], [exe, "-u", "a.txt"]):
        assert eligible_command(argv, env) is None, argv
    assert eligible_command([exe, "a.py"], {"PATH": env["PATH"]}) is None  # buffered: not as the zygote
    base = {"PATH": "/bin", "PYTHONPATH": "/x", "DORA_X": "1", "LD_PRELOAD": "", "OPENBLAS_NUM_THREADS": "2"}
    assert startup_env(base) == {"PYTHONPATH": "/x", "LD_PRELOAD": "", "OPENBLAS_NUM_THREADS": "2"}


@pytest.mark.timeout(180)
def test_stop_force_through_the_coordinator_ends_forked_process_trees(flow, tmp_path):
    """`stop --force` of a dataflow whose Python node was forked (by a coordinator that uses
    the fork server): the node, the child it started and the shell node all go, and so does
    the zygote once its nodes have."""
    from conftest import Coord

    write_long_lived_flow(flow)
    coord = Coord(flow.endpoint, tmp_path / "coordinator.log")
    coord.up(env=_env("1"))
    try:
        res = coord("start", str(flow.yaml), "--name", flow.name, "--detach", cwd=flow.folder)
        assert res.returncode == 0, res.stdout + res.stderr
        pids = long_lived_pids(flow)
        zygote = psutil.Process(pids[0]).ppid()
        assert zygote not in {coord.pid, *(d.pid for d in coord.daemons)}, "the python node was not forked"
        res = coord("stop", flow.name, "--force")
        assert res.returncode == 0, res.stderr
        procs = [psutil.Process(p) for p in [*pids, zygote] if psutil.pid_exists(p)]
        _, alive = psutil.wait_procs(procs, timeout=60)
        assert not alive, f"left running: {alive}"
    finally:
        coord.teardown()
