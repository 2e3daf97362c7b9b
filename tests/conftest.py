"""Shared test helpers: every test gets its own endpoint and dataflow name, every wait is bounded.

Tests run real `dora-zenoh` processes and real Zenoh sessions on loopback.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from dora_zenoh.wire import zconfig

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 60


def cli(*args: str, cwd: Path | None = None, timeout: float = RUN_TIMEOUT, env: dict | None = None
        ) -> subprocess.CompletedProcess:
    """Run ``dora-zenoh ARGS`` to completion (bounded) and capture its output."""
    return subprocess.run([sys.executable, "-m", "dora_zenoh", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env or os.environ.copy())


def start_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    """Start ``dora-zenoh ARGS`` in the background (the test must wait or kill it)."""
    return subprocess.Popen([sys.executable, "-m", "dora_zenoh", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or os.environ.copy())


# Test hubs take ports below the kernel's ephemeral range (32768-60999 here), each xdist worker its
# own slice: the ports that runs pick for their nodes (and every outgoing connection) come from that
# range, so another test's node can never take a hub's port between its choice and `run` binding it
# (a `run` whose endpoint is taken joins the network there: two tests' dataflows were linked once).
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HUB_PORTS = range(max(10000, _ephemeral_low() - 12768), _ephemeral_low())


def _hub_port_slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker) if worker.isdigit() else 0
    size = len(_HUB_PORTS) // max(count, 1)
    return range(_HUB_PORTS.start + index * size, _HUB_PORTS.start + (index + 1) * size)


@pytest.fixture
def endpoint() -> str:
    """A free loopback endpoint for this test's hub (see _HUB_PORTS)."""
    ports = _hub_port_slice()
    for _ in range(200):
        port = random.choice(ports)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return f"tcp/127.0.0.1:{port}"
    return zconfig.free_tcp_endpoint()


@pytest.fixture
def flow_name(request: pytest.FixtureRequest) -> str:
    """A dataflow name unique to this test."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60] + f"-{os.getpid()}"


class Flow:
    """A dataflow written into a temporary folder: YAML plus node scripts."""

    def __init__(self, folder: Path, name: str, endpoint: str) -> None:
        self.folder = folder
        self.name = name
        self.endpoint = endpoint

    def write(self, filename: str, text: str) -> Path:
        path = self.folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    @property
    def yaml(self) -> Path:
        return self.folder / "dataflow.yml"

    def run(self, *extra: str, timeout: float = RUN_TIMEOUT, env: dict | None = None
            ) -> subprocess.CompletedProcess:
        return cli("run", str(self.yaml), "--name", self.name, "--endpoint", self.endpoint, *extra,
                   cwd=self.folder, timeout=timeout, env=env)

    def start(self, *extra: str) -> subprocess.Popen:
        return start_cli("run", str(self.yaml), "--name", self.name, "--endpoint", self.endpoint, *extra,
                         cwd=self.folder)

    def result(self, filename: str = "result.json") -> object:
        return json.loads((self.folder / filename).read_text())


@pytest.fixture
def flow(tmp_path: Path, flow_name: str, endpoint: str) -> Flow:
    return Flow(tmp_path, flow_name, endpoint)


def write_long_lived_flow(flow: Flow) -> None:
    """A dataflow whose nodes never end by themselves: a Python node with a child process,
    and a shell node. Each writes its pids (py.pid, sh.pid) once it runs."""
    flow.write("dataflow.yml", """
        nodes:
          - id: py
            path: forever.py
          - id: sh
            path: shell
            args: echo $$ > sh.pid; sleep 600
    """)
    flow.write("forever.py", """
        import os, subprocess, time
        from dora import Node
        node = Node()
        child = subprocess.Popen(["sleep", "600"])
        open("py.pid", "w").write(f"{os.getpid()} {child.pid}")
        while True:
            time.sleep(1)
    """)


def long_lived_pids(flow: Flow, timeout: float = 30) -> list[int]:
    """The pids written by :func:`write_long_lived_flow`'s nodes (node, its child, shell node)."""
    deadline = time.monotonic() + timeout
    while not ((flow.folder / "py.pid").exists() and (flow.folder / "sh.pid").exists()):
        assert time.monotonic() < deadline, "nodes did not start"
        time.sleep(0.05)
    time.sleep(0.2)  # let the files be written completely
    pids = [int(p) for p in (flow.folder / "py.pid").read_text().split()]
    return pids + [int((flow.folder / "sh.pid").read_text())]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Coord:
    """A coordinator process on the test's own endpoint, driven through the CLI."""

    def __init__(self, endpoint: str, log_file: Path) -> None:
        self.endpoint = endpoint
        self.log_file = log_file
        self.pid: int | None = None
        self.daemons: list[psutil.Process] = []  # the daemons `up` started (they outlive a killed coordinator)

    def __call__(self, *args: str, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return cli(*args, "--endpoint", self.endpoint, timeout=timeout, cwd=cwd)

    def up(self, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
        res = cli("up", "--log-file", str(self.log_file), *extra, "--endpoint", self.endpoint, env=env)
        assert res.returncode == 0, res.stderr
        info = self.info()
        self.pid = info["pid"]
        if info.get("home_pid"):
            self.daemons.append(psutil.Process(info["home_pid"]))
        return res

    def descendants(self) -> list[int]:
        """Every process the coordinator and `up`'s daemons started (the nodes run on the daemon)."""
        roots = [psutil.Process(self.pid), *self.daemons]
        return sorted(c.pid for r in roots if r.is_running() for c in r.children(recursive=True))

    def info(self) -> dict:
        from dora_zenoh.supervision.client import coordinator_running

        return coordinator_running(self.endpoint, timeout=5.0)

    def list(self, target: str | None = None):
        res = self("list", *([target] if target else []), "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def status(self, target: str) -> str:
        return self.list(target)["status"]

    def teardown(self) -> None:
        try:
            self("down", "--grace", "2s", timeout=40)
        except subprocess.TimeoutExpired:
            pass
        if self.pid and psutil.pid_exists(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        for daemon in self.daemons:
            if daemon.is_running():  # (its start time too: not a pid used again)
                daemon.kill()


@contextmanager
def loopback_daemon(coord: Coord, folder: Path, machine: str, listen: str | None = None,
                    *extra: str) -> Iterator[subprocess.Popen]:
    """Another machine's daemon on this one's loopback (``listen``, else a free port; ``extra``:
    more options), joined to ``coord``; its output in ``folder``/daemon-MACHINE.log; stopped
    after, also on failure."""
    log = open(folder / f"daemon-{machine}.log", "w")  # noqa: SIM115 (closed below)
    daemon = subprocess.Popen([sys.executable, "-m", "dora_zenoh", "daemon", "--machine-id", machine,
                               "--coordinator", coord.endpoint, "--listen", listen or zconfig.free_tcp_endpoint(),
                               "--cache-dir", str(folder / "cache"), *extra],
                              stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        wait_for(lambda: machine in coord.info().get("daemons", []), what=f"daemon {machine} joining the coordinator")
        yield daemon
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()


@pytest.fixture
def coord(endpoint: str, tmp_path: Path):
    c = Coord(endpoint, tmp_path / "coordinator.log")
    c.up()
    try:
        yield c
    finally:
        c.teardown()
