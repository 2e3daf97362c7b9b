"""A dataflow's folder shipped to a machine that does not have it, and its node built there (needs root).

The machines of test_machines.py, except that machine b's daemon runs in a mount namespace of
its own where an empty tmpfs hides the dataflow's folder: b can only run its node from the copy
its daemon fetches from the coordinator (over Zenoh) into its cache.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_machines import Machines, machines, received, wait_for, write_flow  # noqa: F401 (machines: a fixture)

pytestmark = pytest.mark.timeout(300)

PROC = """
from dora import Node
from helper import transform
node = Node()
built = open("built.txt").read()  # made by this node's build, on this machine, in this copy
for event in node:
    if event["type"] == "INPUT":
        node.send_output("cmd", transform(bytes(event["value"].to_numpy())))
"""


@pytest.fixture
def net(machines: Machines) -> Machines:  # noqa: F811 (the fixture imported above)
    """Machines a and b: test_machines.py's harness, removed after the test, also on failure."""
    return machines


def start_hidden_daemon(net: Machines, m: str, hidden: Path) -> subprocess.Popen:
    """Machine ``m``'s daemon, in a mount namespace where ``hidden`` is an empty tmpfs."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's `unshare` to hide the dataflow's folder from machine b")
    log = open(net.tmp / f"{m}-daemon-hidden.log", "w")  # noqa: SIM115 (closed in cleanup)
    p = subprocess.Popen(["ip", "netns", "exec", net.ns[m], "unshare", "-m", "sh", "-c",
                          'mount -t tmpfs none "$0" && exec "$@"', str(hidden),
                          sys.executable, "-m", "dora_zenoh", "daemon", "--machine-id", m,
                          "--coordinator", net.coordinator, "--listen", f"{net.proto}/{net.addr[m]}:7448",
                          "--insecure-tcp"],
                         stdout=log, stderr=subprocess.STDOUT, env=net.env, cwd=net.tmp)
    p.stderr = log  # closed in cleanup
    net.procs.append(p)
    wait_for(lambda: m in net.daemons(), 30, f"daemon {m} to join")
    return p


def fetched(log: Path, name: str) -> tuple[int, int]:
    """(files, bytes) the daemon says it fetched for dataflow ``name``."""
    m = re.search(rf"dataflow '{name}': files from .*; fetched (\d+) file\(s\), (\d+) bytes", log.read_text())
    assert m, log.read_text()[-2000:]
    return int(m.group(1)), int(m.group(2))


def stop(net: Machines, name: str) -> None:
    out = net.cli("stop", name)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: all(s["status"] not in ("running", "stopping") for s in net.nodes(name).values()),
             60, f"every node of {name} to stop")


def test_folder_shipped_built_cached_and_checked(net: Machines) -> None:
    flow = net.tmp / "flow"
    flow.mkdir()
    yaml = write_flow(flow)
    yaml.write_text(yaml.read_text().replace(
        "    restart_policy: never\n",
        "    restart_policy: never\n    build: echo building proc here; echo ok > built.txt\n"))
    (flow / "proc.py").write_text(PROC)
    (flow / "helper.py").write_text("def transform(b):\n    return b\n")
    (flow / ".dora-zenoh-ignore").write_text("# written by act while it runs\ngot.txt\n")
    net.start_coordinator()
    net.start_daemon("a")  # sees the folder at the same path
    start_hidden_daemon(net, "b", flow)
    log_b = net.tmp / "b-daemon-hidden.log"

    # 1. b gets a copy, builds proc in it, and proc talks to the nodes on a
    shipped = [p for p in flow.iterdir() if p.is_file()]  # (got.txt, ignored, does not exist yet)
    out = net.cli("start", str(yaml), "--name", "ship1", "--detach")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: len(received(flow)) >= 3, 60, "data through proc on b")
    assert fetched(log_b, "ship1") == (len(shipped), sum(p.stat().st_size for p in shipped))
    trees = [t for t in (net.tmp / "state" / "dora-zenoh" / "daemon-b" / "files" / "trees").iterdir() if t.is_dir()]
    assert len(trees) == 1
    copy = trees[0]
    assert (copy / "built.txt").read_text() == "ok\n" and not (flow / "built.txt").exists()
    logs = net.cli("logs", "ship1", "proc")
    assert logs.returncode == 0 and "building proc on machine 'b'" in logs.stdout, logs.stdout + logs.stderr
    assert "building proc here" in logs.stdout
    stop(net, "ship1")

    # 2. unchanged files: nothing crosses the network, nothing is built again
    out = net.cli("start", str(yaml), "--name", "ship2", "--detach")
    assert out.returncode == 0, out.stderr
    assert fetched(log_b, "ship2") == (0, 0)
    logs = net.cli("logs", "ship2", "proc")
    assert "building proc" not in logs.stdout
    stop(net, "ship2")

    # 3. a changed file in the cache is found and fetched again (else proc would exit at once)
    (copy / "helper.py").write_text("def transform(b):\n    raise SystemExit('tampered')\n")
    count = len(received(flow))
    out = net.cli("start", str(yaml), "--name", "ship3", "--detach")
    assert out.returncode == 0, out.stderr
    assert fetched(log_b, "ship3") == (1, len((flow / "helper.py").read_bytes()))
    assert "the cached copy of helper.py was changed or removed" in log_b.read_text()
    wait_for(lambda: len(received(flow)) > count + 3, 60, "data through the repaired proc")
    stop(net, "ship3")

    # 4. a build that fails on b: the start fails naming b, the node and the output; nothing runs
    bad = flow / "bad.yml"
    bad.write_text(yaml.read_text().replace("echo building proc here; echo ok > built.txt",
                                            "echo compiling; echo no-compiler-found >&2; exit 3"))
    count = len(received(flow))
    out = net.cli("start", str(bad), "--name", "ship4", "--detach")
    assert out.returncode != 0
    assert "machine 'b': the build of 'proc' failed (exit code 3)" in out.stderr, out.stderr
    assert "no-compiler-found" in out.stderr and "Traceback" not in out.stderr
    assert fetched(log_b, "ship4") == (1, len(bad.read_bytes()))  # the rest copied from the first copy
    assert net.nodes("ship4") == {}
    listing = net.cli("list", "--json")
    assert '"ship4"' not in listing.stdout
    assert len(received(flow)) == count  # sensor and act never started

    # 5. `dora-zenoh build FILE` builds each node where it runs: proc in b's copy, sensor here
    only = flow / "only.yml"
    only.write_text(yaml.read_text().replace("echo building proc here; echo ok > built.txt",
                                             "echo building proc by build; echo yes > built2.txt").replace(
        "    inputs: {tick:", "    build: echo sensor built > sensor-built.txt\n    inputs: {tick:"))
    out = net.cli("build", str(only))
    assert out.returncode == 0, out.stderr
    assert "[b] building proc by build" in out.stderr and "building proc on machine 'b'" in out.stderr, out.stderr
    assert "2 build command(s) succeeded" in out.stderr, out.stderr
    assert (flow / "sensor-built.txt").exists() and not (flow / "built2.txt").exists()
    trees = net.tmp / "state" / "dora-zenoh" / "daemon-b" / "files" / "trees"
    assert [t for t in trees.iterdir() if (t / "built2.txt").exists()], list(trees.iterdir())
    out = net.cli("build", str(bad))  # its failure names the machine, the node and the output
    assert out.returncode == 1
    assert "machine 'b': the build of 'proc' failed (exit code 3)" in out.stderr, out.stderr
    assert "no-compiler-found" in out.stderr and "Traceback" not in out.stderr
