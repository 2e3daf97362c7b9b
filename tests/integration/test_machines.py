"""Several machines, made of Linux network namespaces joined by a veth pair (needs root).

Machine "a" (10.231.N.1) runs the coordinator and a daemon; machine "b" (10.231.N.2) a
daemon. The dataflow is sensor (a) -> proc (b) -> act (a): every message crosses the
veth twice, directly between the nodes (the coordinator carries none). Shared memory is
off in these tests: both namespaces share this host's /dev/shm, and a 4 MiB message
must really cross the link. Everything (processes, namespaces, veth) is removed after
each test, also on failure.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_start_gate import OTHER, SINK, SOURCE

pytestmark = pytest.mark.timeout(240)

BIG = 4 * 1024 * 1024
# Longer than the 10 s: past Zenoh's 10 s lease, so every session sees the other side
# go (tokens withdrawn, links closed) and must find it again.
OUTAGE = 22.0


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the test makes network namespaces and a veth pair (ip netns)")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip` to make network namespaces")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


class Machines:
    """Two namespaces a and b on 10.231.N.0/24, and the dora-zenoh processes started in them."""

    def __init__(self, tmp: Path) -> None:
        self.tag = f"{os.getpid() % 100000}"
        self.n = 20 + os.getpid() % 200
        self.ns = {"a": f"dza{self.tag}", "b": f"dzb{self.tag}"}
        self.dev = {"a": f"dva{self.tag}", "b": f"dvb{self.tag}"}
        self.addr = {"a": f"10.231.{self.n}.1", "b": f"10.231.{self.n}.2"}
        # the port names the coordinator's control socket on this host: one per test process
        self.port = 20000 + os.getpid() % 20000
        self.coordinator = f"tcp/{self.addr['a']}:{self.port}"
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        zconf = tmp / "zenoh.json5"
        zconf.write_text(json.dumps({"scouting": {"multicast": {"enabled": False}},
                                     "transport": {"shared_memory": {"enabled": False}}}))
        # (DORA_ZENOH_INSECURE_NETWORK: the security work's opt-out of TLS, for the plain-TCP tests)
        # (XDG_STATE_HOME: the daemons' caches of shipped folders stay in the test's folder)
        self.env = {**os.environ, "DORA_ZENOH_ZENOH_CONFIG": str(zconf), "DORA_ZENOH_ENDPOINT": self.coordinator,
                    "DORA_ZENOH_INSECURE_NETWORK": "1", "XDG_STATE_HOME": str(tmp / "state")}
        self.proto = "tcp"
        # each machine's own variables; b's control sockets (its daemon's, for its user) in a /tmp of
        # its own, as on another machine (namespaces share this host's file system)
        # (short: a Unix socket's path has at most 107 bytes)
        self.b_tmp = Path(tempfile.mkdtemp(prefix="dzb"))
        self.own: dict[str, dict[str, str]] = {"a": {}, "b": {"DORA_ZENOH_CONTROL_BASE": str(self.b_tmp)}}

    def use_certs(self) -> None:
        """Mutual TLS the way docs/machines.md sets it up: `dora-zenoh certs` makes a CA and one
        certificate per machine naming its address, and each machine exports its own in
        DORA_ZENOH_TLS (no Zenoh config of TLS)."""
        folder = self.tmp / "certs"
        for args in (("ca",), *(("machine", m, "--ip", self.addr[m]) for m in "ab")):
            subprocess.run([sys.executable, "-m", "dora_zenoh", "certs", *args, "--dir", str(folder)],
                           check=True, capture_output=True, timeout=60)
        self.proto = "tls"
        self.coordinator = f"tls/{self.addr['a']}:{self.port}"
        self.env["DORA_ZENOH_ENDPOINT"] = self.coordinator
        self.env.pop("DORA_ZENOH_INSECURE_NETWORK")
        for m in "ab":
            self.own[m]["DORA_ZENOH_TLS"] = str(folder / f"{m}.pem")

    def env_of(self, m: str) -> dict[str, str]:
        return {**self.env, **self.own[m]}

    def use_tls(self, name: str = "good") -> dict[str, Path]:
        """Mutual TLS everywhere: a CA and one certificate naming both machines' addresses (returned)."""
        certs = make_certs(self.tmp / name, [self.addr["a"], self.addr["b"]])
        self.proto = "tls"
        self.coordinator = f"tls/{self.addr['a']}:{self.port}"
        self.env["DORA_ZENOH_ENDPOINT"] = self.coordinator
        self.env.pop("DORA_ZENOH_INSECURE_NETWORK")
        self.env["DORA_ZENOH_ZENOH_CONFIG"] = str(tls_config(self.tmp / f"zenoh-{name}.json5", certs))
        return certs

    def setup(self) -> None:
        for m in "ab":
            _ip("netns", "add", self.ns[m])
        _ip("link", "add", self.dev["a"], "type", "veth", "peer", "name", self.dev["b"])
        for m in "ab":
            _ip("link", "set", self.dev[m], "netns", self.ns[m])
            _ip("-n", self.ns[m], "addr", "add", f"{self.addr[m]}/24", "dev", self.dev[m])
            _ip("-n", self.ns[m], "link", "set", self.dev[m], "up")
            _ip("-n", self.ns[m], "link", "set", "lo", "up")

    def cleanup(self) -> None:
        for p in self.procs:  # daemons first stop their nodes themselves
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        for m in "ab":  # whatever is left in our namespaces is ours
            pids = subprocess.run(["ip", "netns", "pids", self.ns[m]], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", self.ns[m]], capture_output=True)
        shutil.rmtree(self.b_tmp, ignore_errors=True)
        for p in self.procs:
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()

    def spawn(self, m: str, *args: str) -> subprocess.Popen:
        """``dora-zenoh ARGS`` in the background on machine ``m`` (output to a file)."""
        log = open(self.tmp / f"{m}-{args[0]}-{len(self.procs)}.log", "w")  # noqa: SIM115 (closed in cleanup)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[m], sys.executable, "-m", "dora_zenoh", *args],
                             stdout=log, stderr=subprocess.STDOUT, env=self.env_of(m), cwd=self.tmp)
        p.stderr = log  # closed in cleanup
        self.procs.append(p)
        return p

    def cli(self, *args: str, timeout: float = 60, on: str = "a") -> subprocess.CompletedProcess:
        """``dora-zenoh ARGS`` on machine ``on``; a command that outlives ``timeout`` (a loaded machine)
        is killed and returns 124, so a bounded wait polling it tries again."""
        cmd = ["ip", "netns", "exec", self.ns[on], sys.executable, "-m", "dora_zenoh", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env_of(on),
                                  cwd=self.tmp)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {timeout:g} s")

    def start_coordinator(self) -> subprocess.Popen:
        p = self.spawn("a", "coordinator", "--endpoint", self.coordinator)
        wait_for(lambda: self.cli("list", "--json", timeout=30).returncode == 0, 60, "the coordinator to answer")
        return p

    def start_daemon(self, m: str, wait: bool = True) -> subprocess.Popen:
        p = self.spawn(m, "daemon", "--machine-id", m, "--coordinator", self.coordinator,
                       "--listen", f"{self.proto}/{self.addr[m]}:7448",
                       *(["--insecure-tcp"] if self.proto == "tcp" else []))
        if wait:
            wait_for(lambda: m in self.daemons(), 30, f"daemon {m} to join")
        return p

    def daemons(self) -> list[str]:
        """Machine ids of the daemons connected to the coordinator (its ``info``)."""
        try:
            out = subprocess.run(["ip", "netns", "exec", self.ns["a"], sys.executable, "-c", textwrap.dedent(f"""
                import json
                from dora_zenoh.supervision.client import Client
                with Client({self.coordinator!r}) as c:
                    print(json.dumps(c.call("info")["daemons"]))
                """)], capture_output=True, text=True, timeout=60, env=self.env_of("a"))
        except subprocess.TimeoutExpired:  # a loaded machine: the caller's bounded wait tries again
            return []
        return json.loads(out.stdout) if out.returncode == 0 else []

    def nodes(self, name: str, timeout: float = 60) -> dict[str, dict]:
        out = self.cli("list", name, "--json", timeout=timeout)
        if out.returncode != 0:
            return {}
        return {n["id"]: n for n in json.loads(out.stdout)["nodes"]}


def make_certs(folder: Path, addresses: list[str], ca: dict[str, Path] | None = None) -> dict[str, Path]:
    """With openssl: a CA (``ca``'s, if given), and a key + certificate it signed whose
    subjectAltNames are ``addresses``."""
    folder.mkdir()
    f = {k: folder / k for k in ("ca.key", "ca.pem", "m.key", "m.csr", "m.pem", "ext.cnf")}
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=30)  # noqa: E731
    if ca is not None:
        f["ca.key"], f["ca.pem"] = ca["ca.key"], ca["ca.pem"]
    else:
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(f["ca.key"]))
        run("req", "-x509", "-new", "-key", str(f["ca.key"]), "-subj", "/CN=dz-test-ca", "-days", "2",
            "-out", str(f["ca.pem"]))
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(f["m.key"]))
    run("req", "-new", "-key", str(f["m.key"]), "-subj", "/CN=dz-test-machine", "-out", str(f["m.csr"]))
    f["ext.cnf"].write_text("subjectAltName=" + ",".join(f"IP:{a}" for a in addresses) + "\n"
                            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")
    run("x509", "-req", "-in", str(f["m.csr"]), "-CA", str(f["ca.pem"]), "-CAkey", str(f["ca.key"]),
        "-CAcreateserial", "-days", "2", "-extfile", str(f["ext.cnf"]), "-out", str(f["m.pem"]))
    return f


def tls_config(path: Path, certs: dict[str, Path], ca: Path | None = None) -> Path:
    tls = {"root_ca_certificate": str(ca or certs["ca.pem"]), "enable_mtls": True,
           "listen_private_key": str(certs["m.key"]), "listen_certificate": str(certs["m.pem"]),
           "connect_private_key": str(certs["m.key"]), "connect_certificate": str(certs["m.pem"]),
           "verify_name_on_connect": True}
    path.write_text(json.dumps({"scouting": {"multicast": {"enabled": False}},
                                "transport": {"shared_memory": {"enabled": False}, "link": {"tls": tls}}}))
    return path


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    _needs_root()
    net = Machines(tmp_path)
    try:
        net.setup()
        yield net
    finally:
        net.cleanup()
        for log in sorted(tmp_path.glob("*.log")) + sorted(tmp_path.glob("out/*/*.txt")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")  # shown if the test failed


def write_flow(folder: Path, size: int = 16, period_ms: int = 100, proc_restart: str = "never",
               proc_crash_after: int = 0, proc_max_restarts: int | None = None,
               proc_restart_delay: float | None = None, local_reader: bool = False) -> Path:
    """sensor (a) -> proc (b) -> act (a); with ``local_reader``, a node on a reading sensor too
    (local.py: when each message came, in local.txt)."""
    (folder / "sensor.py").write_text(textwrap.dedent(f"""
        from dora import Node
        node = Node()
        i = 0
        for event in node:
            if event["type"] == "INPUT":
                i += 1
                node.send_output("reading", i.to_bytes(8, "little") + bytes({size}))
            else:
                print("event", event["type"], flush=True)
        print("sensor loop ended", flush=True)
    """))
    (folder / "proc.py").write_text(textwrap.dedent(f"""
        import os, sys
        from dora import Node
        node = Node()
        with open("proc-starts.txt", "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        n = 0
        for event in node:
            if event["type"] == "INPUT":
                n += 1
                if {proc_crash_after} and n > {proc_crash_after}:
                    sys.exit(3)  # a crash, after forwarding {proc_crash_after} messages
                node.send_output("cmd", bytes(event["value"].to_numpy()))
    """))
    (folder / "act.py").write_text(textwrap.dedent("""
        import time
        from dora import Node
        node = Node()
        for event in node:
            if event["type"] == "INPUT":
                v = bytes(event["value"].to_numpy())
                with open("got.txt", "a") as f:
                    f.write(f"{int.from_bytes(v[:8], 'little')} {len(v)} {time.monotonic()}\\n")
    """))
    (folder / "local.py").write_text(textwrap.dedent("""
        import time
        from dora import Node
        node = Node()
        for event in node:
            if event["type"] == "INPUT":
                with open("local.txt", "a") as f:
                    f.write(f"{time.monotonic()}\\n")
    """))
    # the daemons' logs and act's output change while a start ships the folder (docs/machines.md)
    (folder / ".dora-zenoh-ignore").write_text("*.log\ngot.txt\nlocal.txt\n/state/\n")
    local = textwrap.indent(textwrap.dedent("""
        - id: local
          path: local.py
          deploy: {machine: a}
          inputs: {reading: sensor/reading}
    """), "  ") if local_reader else ""
    yaml = folder / "dataflow.yml"
    yaml.write_text(textwrap.dedent(f"""
        nodes:
          - id: sensor
            path: sensor.py
            deploy: {{machine: a}}
            inputs: {{tick: dora/timer/millis/{period_ms}}}
            outputs: [reading]
          - id: proc
            path: proc.py
            deploy: {{machine: b}}
            restart_policy: {proc_restart}{f"{chr(10)}            max_restarts: {proc_max_restarts}"
                                            if proc_max_restarts is not None else ""}{
                                            f"{chr(10)}            restart_delay: {proc_restart_delay}"
                                            if proc_restart_delay is not None else ""}
            inputs: {{reading: sensor/reading}}
            outputs: [cmd]
          - id: act
            path: act.py
            deploy: {{machine: a}}
            inputs: {{cmd: proc/cmd}}
    """) + local)
    return yaml


def received(folder: Path) -> list[tuple[int, int]]:
    path = folder / "got.txt"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(int(r[0]), int(r[1])) for r in rows if len(r) == 3]


def received_times(folder: Path) -> list[float]:
    """When act got each message (its time.monotonic(): one clock for every namespace of this host)."""
    path = folder / "got.txt"
    rows = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return [float(r[2]) for r in rows if len(r) == 3]


def start_flow(net: Machines, name: str, *start_args: str, **kw: Any) -> Path:
    net.start_coordinator()
    net.start_daemon("a")
    net.start_daemon("b")
    yaml = write_flow(net.tmp, **kw)
    out = net.cli("start", str(yaml), "--name", name, "--detach", *start_args)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: len(received(net.tmp)) >= 3, 60, "data through b")
    return yaml


def test_three_machines_and_a_4mib_message(machines: Machines) -> None:
    start_flow(machines, "three", size=BIG, period_ms=300)
    got = received(machines.tmp)
    assert all(size == BIG + 8 for _, size in got), got[:3]
    nodes = machines.nodes("three")
    assert {n: s["machine"] for n, s in nodes.items()} == {"sensor": "a", "proc": "b", "act": "a"}
    assert all(s["status"] == "running" for s in nodes.values()), nodes
    # `graph NAME` draws the running dataflow per machine, by the ids `deploy:` names (one host here)
    out = machines.cli("graph", "three", "--format", "json")
    assert out.returncode == 0, out.stderr
    drawn = json.loads(out.stdout)
    assert {v["id"]: v["machine"] for v in drawn["vertices"] if v["kind"] == "node"} == \
        {"sensor": "a", "proc": "b", "act": "a"}
    assert sum(e["crosses_machines"] for e in drawn["edges"]) == 2  # sensor -> proc -> act
    # CPU and RSS of every node, measured by its machine's daemon (a Python node with Zenoh has
    # tens of MiB resident; the coordinator used to show 0 for remote nodes; a first CPU sample is 0.0)
    wait_for(lambda: all(s["rss"] > BIG for s in machines.nodes("three").values()), 30, "every node's RSS")
    assert all(s["cpu"] >= 0.0 and s["pid"] for s in machines.nodes("three").values())
    out = machines.cli("node", "list", "-d", "three", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert {n: r["machine"] for n, r in rows.items()} == {"sensor": "a", "proc": "b", "act": "a"}, rows
    assert all(r["rss"] > BIG and r["cpu"] is not None and r["restarts"] == 0 for r in rows.values()), rows
    assert rows["proc"]["pid"] == nodes["proc"]["pid"]
    out = machines.cli("node", "info", "proc", "-d", "three")
    assert out.returncode == 0, out.stderr
    assert "machine b" in out.stdout and "CPU: -%" not in out.stdout, out.stdout
    logs = machines.cli("logs", "three", "proc")
    assert logs.returncode == 0, logs.stderr
    out = machines.cli("stop", "three")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: all(s["status"] not in ("running", "stopping") for s in machines.nodes("three").values()),
             60, "every node to stop")
    # each node believed its own runner's stop (the runners of both machines answer on one key:
    # with Zenoh's default consolidation a node heard only one of them and was killed after the grace)
    nodes = machines.nodes("three")
    assert all(s["status"] in ("succeeded", "stopped") for s in nodes.values()), nodes


def dataflow_row(net: Machines, name: str) -> dict:
    """``list NAME --json``: the dataflow's status, summary and nodes ({} if no answer)."""
    out = net.cli("list", name, "--json")
    return json.loads(out.stdout) if out.returncode == 0 else {}


def daemon_events(net: Machines, machine: str) -> list[str]:
    """What the (first) coordinator said of a machine's daemon, in order: connected / lost."""
    log = (net.tmp / "a-coordinator-0.log").read_text()
    prefix = f"[dora-zenoh] daemon of machine '{machine}' "
    return [line[len(prefix):].split()[0] for line in log.splitlines() if line.startswith(prefix)]


# The coordinator's answer to a command, asked from this process through its control socket (a
# Unix socket: no CLI to start, no namespace to enter) takes a few ms, at most a second or so on
# a loaded machine. During a partition it used to wait 10 s or more: Zenoh closes each TCP link
# to the unreachable machine with SO_LINGER 10 s, blocking a receive thread meanwhile, and its 2
# receive threads were all blocked so (docs/machines.md). 8 s is far from both.
COMMAND_BOUND = 8.0


def control_client(net: Machines) -> Any:
    """A supervision Client of this process on the coordinator's control socket (retried: a loaded
    machine may be slow to link)."""
    from dora_zenoh.supervision.client import Client, ControlError

    deadline = time.monotonic() + 60
    while True:
        try:
            return Client(net.coordinator, connect_timeout=10.0)
        except ControlError:
            if time.monotonic() > deadline:
                raise


def poll_commands(client: Any, until: float, slow: list[str]) -> None:
    """``list`` through the control socket every 0.2 s until ``until`` (monotonic); the calls that
    did not answer within COMMAND_BOUND go to ``slow``."""
    from dora_zenoh.supervision.client import ControlError

    longest = 0.0
    while time.monotonic() < until:
        asked = time.monotonic()
        try:
            client.call("list", timeout=COMMAND_BOUND)
        except ControlError as exc:
            slow.append(f"{asked:.1f}: {exc}")
        longest = max(longest, time.monotonic() - asked)
        time.sleep(0.2)
    print(f"the coordinator's slowest answer to `list` during the outage: {longest:.2f} s")


def test_partition_and_heal(machines: Machines) -> None:
    start_flow(machines, "heal", period_ms=50, local_reader=True)
    before = machines.nodes("heal")
    pids = {n: s["pid"] for n, s in before.items()}
    seen = []  # proc's status as `list` shows it, polled through the outage
    slow: list[str] = []  # commands the coordinator did not answer within COMMAND_BOUND
    client = control_client(machines)
    poller = threading.Thread(target=poll_commands, args=(client, time.monotonic() + OUTAGE, slow), daemon=True)
    poller.start()
    _ip("-n", machines.ns["a"], "link", "set", machines.dev["a"], "down")
    down_at = time.monotonic()
    try:
        # The outage outlasts Zenoh's lease (10 s): every session sees the other side go.
        end = time.monotonic() + OUTAGE
        while time.monotonic() < end:
            asked = time.monotonic()
            seen.append(machines.nodes("heal", timeout=max(1.0, end - time.monotonic())).get("proc", {}).get("status"))
            print(f"{OUTAGE - (end - time.monotonic()):.1f} s into the outage: proc {seen[-1]} "
                  f"(`list` took {time.monotonic() - asked:.2f} s)")
            time.sleep(0.5)
        during = len(received(machines.tmp))
        events_down = daemon_events(machines, "b")  # the coordinator's view while the link is down
        # `list NAME` says why b's node shows as it does (it showed `running` with no word of it)
        text = machines.cli("list", "heal").stdout
        assert ("proc (lost): is unreachable" in text
                or "proc (running): as its machine 'b' last reported" in text), text
        # `logs` of b's node gives up on a machine that stopped reporting (it waited for Zenoh
        # to close the link: 8.8 s a moment into a partition)
        out = machines.cli("logs", "heal", "proc")
        assert out.returncode == 1 and "did not answer 'logs': it has not reported for" in out.stderr, out.stderr
    finally:
        _ip("-n", machines.ns["a"], "link", "set", machines.dev["a"], "up")
    healed_at = time.monotonic()
    # Machine a's own data went on: sensor -> local never left a. It stopped for 7.4-7.5 s from
    # 7.5 s into the outage (4 runs of 4) while sensor's one Zenoh thread was blocked closing its
    # link to b (Zenoh's 10 s SO_LINGER, now turned off: dora_zenoh.wire.backoff). The bound is
    # far above a loaded machine's scheduling and far below that stall.
    arrivals = [float(t) for t in (machines.tmp / "local.txt").read_text().split()]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False) if down_at <= b <= healed_at]
    assert gaps and max(gaps) < 3.0, f"a's local data stopped for {max(gaps, default=0):.1f} s during the outage"
    # (Before every multi-machine peer let only the greater Zenoh id dial, the nodes' links
    # sometimes never came back here: zconfig.peer_config's one_dialer.)
    wait_for(lambda: len(received(machines.tmp)) > during + 3, 60, "data to resume after the link came back")
    first = min(t for t in received_times(machines.tmp) if t > healed_at)
    print(f"data resumed {first - healed_at:.2f} s after the link came back (first message's arrival)")
    last: dict[str, dict] = {}

    def all_running() -> bool:  # ({}: `list` did not answer in time, a loaded machine: ask again)
        last.clear()
        last.update(machines.nodes("heal"))
        return bool(last) and all(s["status"] == "running" for s in last.values())

    wait_for(all_running, 60, "every node to show running again")
    after = dict(last)
    assert {n: s["pid"] for n, s in after.items()} == pids, "a node was restarted or replaced by the partition"
    # A stable status, in this order: b's daemon connected, lost (no report for a while during the
    # outage), connected (after it); never lost, connected, lost. (The coordinator's log is the
    # record of its view; the polls check that `list` never went back to running.)
    poller.join(COMMAND_BOUND + 30)
    client.close()
    assert not slow, f"the coordinator's commands waited for the unreachable machine: {slow}"
    assert events_down in (["connected"], ["connected", "lost"]), events_down  # not connected while down
    assert daemon_events(machines, "b") == ["connected", "lost", "connected"], daemon_events(machines, "b")
    if "lost" in seen:
        assert "running" not in seen[seen.index("lost"):], str(seen)


def node_processes(net: Machines, m: str, script: str) -> list[int]:
    """The pids of processes running ``script`` in machine ``m``'s namespace."""
    pids = subprocess.run(["ip", "netns", "pids", net.ns[m]], capture_output=True, text=True).stdout.split()
    found = []
    for pid in pids:
        try:
            if script in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_stop_during_a_partition_reaches_the_far_machine_once_it_is_back(machines: Machines) -> None:
    # The helper's finding (3 Dec): `stop` while b was cut off stopped a's nodes, b's proc ran on for
    # good after the heal (the stop was sent once), the dataflow showed "failed" with "its machine
    # 'b' is unreachable (daemon gone)", and the name stayed taken on b. a's nodes were killed at the
    # grace period's end: closing their sessions blocked 10 s on the links to b (SO_LINGER).
    yaml = start_flow(machines, "sp")
    assert node_processes(machines, "b", "proc.py")
    _ip("-n", machines.ns["a"], "link", "set", machines.dev["a"], "down")
    try:
        time.sleep(1.0)
        out = machines.cli("stop", "sp", timeout=90)
        assert out.returncode == 1, out.stderr  # not every node confirmed stopped
        assert "node 'proc' on machine 'b' is unreachable" in out.stderr, out.stderr
        assert "gets the stop when its machine reports again" in out.stderr, out.stderr
        nodes = machines.nodes("sp")
        for name in ("sensor", "act"):  # they ended on STOP, within the grace period
            assert nodes[name]["status"] == "succeeded", nodes[name]
        assert dataflow_row(machines, "sp")["status"] == "stopped"
        again = machines.cli("stop", "sp")
        assert again.returncode == 1 and "get the stop as soon as their daemon reports again" in again.stderr, \
            again.stderr
        assert node_processes(machines, "b", "proc.py"), "proc stopped though its machine was cut off"
    finally:
        _ip("-n", machines.ns["a"], "link", "set", machines.dev["a"], "up")
    wait_for(lambda: not node_processes(machines, "b", "proc.py"), 60, "proc on b to get the stop after the heal")
    row = dataflow_row(machines, "sp")
    assert row["status"] == "stopped" and not row["unreached"], row
    assert "machine 'b' got the stop once it was back" in row["summary"], row["summary"]
    out = machines.cli("start", str(yaml), "--name", "sp", "--detach")  # the name is free on b again
    assert out.returncode == 0, out.stderr
    out = machines.cli("stop", "sp")
    assert out.returncode == 0, out.stderr


def test_daemon_killed_shows_its_nodes_lost_and_a_new_daemon_restarts_them(machines: Machines) -> None:
    start_flow(machines, "lost", proc_restart="on-failure", proc_restart_delay=2)
    old_pid = machines.nodes("lost")["proc"]["pid"]
    daemon_b = machines.procs[-1]
    daemon_b.send_signal(signal.SIGKILL)  # `ip netns exec` execs the daemon: this is its pid
    killed_at = time.monotonic()
    wait_for(lambda: machines.nodes("lost").get("proc", {}).get("status") == "lost", 30, "proc to show lost")
    print(f"proc shown lost {time.monotonic() - killed_at:.2f} s after its daemon was killed (bounded wait, "
          "including one `list` round trip)")
    assert machines.nodes("lost")["sensor"]["status"] == "running"
    assert dataflow_row(machines, "lost").get("status") == "degraded"  # waits for b: proc would restart
    info = machines.cli("node", "info", "proc", "-d", "lost")  # its counters are unknown, not zero
    assert info.returncode == 0 and "unknown (the node is lost" in info.stdout, info.stdout + info.stderr
    count = len(received(machines.tmp))
    # Edited while b is down: b's restart runs the files the dataflow started with, as a's nodes do.
    marker = machines.tmp / "edited-proc-ran"
    (machines.tmp / "proc.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    machines.start_daemon("b")  # its restart_policy (on-failure) applies: a lost machine is a failure
    wait_for(lambda: machines.nodes("lost").get("proc", {}).get("status") == "running", 30, "proc to run again")
    proc = machines.nodes("lost")["proc"]
    assert proc["pid"] != old_pid
    assert proc["restarts"] == 1  # losing its machine counts as a failure
    # the restart policy's delay applies, as for a local restart (the coordinator says so)
    log = (machines.tmp / "a-coordinator-0.log").read_text()
    assert ("node 'proc' of dataflow 'lost' was lost with machine 'b'; restarting in 2 s (restart 1, "
            "restart_policy: on-failure)") in log, log[-2000:]
    wait_for(lambda: len(received(machines.tmp)) > count + 3, 30, "data through the restarted proc")
    assert not marker.exists()
    log = (machines.tmp / "a-coordinator-0.log").read_text()
    assert ("proc on machine 'b' run the files the dataflow started with, as its other nodes do; changed since: "
            "proc.py (stop and start the dataflow to run the new ones)") in log, log[-2000:]


def test_remote_restart_policy_then_fail_fast_stops_every_machine(machines: Machines) -> None:
    # proc (machine b) crashes after 10 messages, every time: b's daemon restarts it once
    # (on-failure, max_restarts 1); its second crash is for good, and --fail-fast then stops the
    # dataflow on machine a too.
    start_flow(machines, "ff", "--fail-fast", proc_restart="on-failure", proc_crash_after=10, proc_max_restarts=1)

    wait_for(lambda: dataflow_row(machines, "ff").get("status") == "failed", 90, "the dataflow to fail")
    d = dataflow_row(machines, "ff")
    nodes = {n["id"]: n for n in d["nodes"]}
    assert nodes["proc"]["status"] == "failed" and nodes["proc"]["restarts"] == 1, nodes
    assert len((machines.tmp / "proc-starts.txt").read_text().split()) == 2  # restarted by b's daemon
    for node in ("sensor", "act"):  # machine a's: stopped by fail-fast (they end cleanly on STOP)
        assert nodes[node]["status"] in ("succeeded", "stopped") and not nodes[node]["pid"], nodes
    assert "node 'proc' on machine 'b'" in d["summary"] and "fail-fast" in d["summary"], d["summary"]


def test_coordinator_killed_then_restarted_readopts(machines: Machines) -> None:
    start_flow(machines, "adopt", "--fail-fast", "--open")  # (a closed one: test_a_closed_dataflow_across_machines)
    wait_for(lambda: dataflow_row(machines, "adopt").get("fail_fast") is True, 60, "list to show --fail-fast")
    coordinator, daemon_b = machines.procs[0], machines.procs[2]
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait(10)
    count = len(received(machines.tmp))
    wait_for(lambda: len(received(machines.tmp)) > count + 3, 30, "data to keep flowing without a coordinator")
    # Daemon b reports only after the new coordinator adopted the dataflow from a's report (in
    # CI it happened by chance, and b's nodes were never added): whenever a daemon's report
    # arrives, its nodes join the adopted dataflow. (Its nodes run on while it is paused.)
    daemon_b.send_signal(signal.SIGSTOP)
    try:
        machines.start_coordinator()
        # b's node is shown lost until b's report comes (it used to vanish: see the test below)
        wait_for(lambda: {n: s["status"] for n, s in machines.nodes("adopt").items()}
                 == {"sensor": "running", "act": "running", "proc": "lost"}, 30, "adoption from a's report")
    finally:
        daemon_b.send_signal(signal.SIGCONT)
    # (proc is listed from the start, as lost: wait for b's report to show it running)
    wait_for(lambda: {n: s["status"] for n, s in machines.nodes("adopt").items()}
             == {"sensor": "running", "act": "running", "proc": "running"}, 60, "b's nodes to be adopted")
    # the start's option, from the daemons' reports (bounded wait: a loaded machine's `list` may not answer)
    wait_for(lambda: dataflow_row(machines, "adopt").get("fail_fast") is True, 60, "the adopted dataflow's fail-fast")
    # daemon a's log tells the story (it said nothing of the coordinator's death before 5 Dec)
    log_a = Path(machines.procs[1].stderr.name)  # type: ignore[union-attr]
    text = log_a.read_text()
    marks = [text.find(f"daemon 'a': {what} {machines.coordinator}") for what in
             ("linked to the coordinator at", "lost the coordinator at", "the coordinator at")]
    assert 0 <= marks[0] < marks[1] < marks[2] and "is back" in text[marks[2]:], text
    out = machines.cli("stop", "adopt")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: all(s["status"] not in ("running", "stopping") for s in machines.nodes("adopt").values()),
             60, "every node to stop")


def test_coordinator_and_a_daemon_killed_the_readopted_dataflow_keeps_every_node(machines: Machines) -> None:
    # The helper's finding (3 Dec): with the coordinator and b's daemon both killed, the new
    # coordinator adopted the dataflow from a's report alone: proc vanished from it (not lost, never
    # restarted), the dataflow showed "running" while nothing flowed. Also: the log folder `start`
    # named stayed empty (each daemon wrote under an id of its own), and adoption made a new one.
    yaml = write_flow(machines.tmp, proc_restart="on-failure", proc_restart_delay=1)
    machines.start_coordinator()
    machines.start_daemon("a")
    daemon_b = machines.start_daemon("b")
    out = machines.cli("start", str(yaml), "--name", "cd", "--detach")
    assert out.returncode == 0, out.stderr
    log_dir = out.stderr.rsplit("logs in ", 1)[1].strip()
    wait_for(lambda: len(received(machines.tmp)) >= 3, 60, "data through b")
    wait_for(lambda: (Path(log_dir) / "log_sensor.txt").exists(), 30, "a's node logs in the folder `start` named")
    offers = machines.tmp / "state" / "dora-zenoh" / "offers"  # (XDG_STATE_HOME: see Machines)
    assert [p.name for p in offers.glob("*/*")] == [Path(log_dir).name]  # kept under the run's id
    coordinator = machines.procs[0]
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait(10)
    daemon_b.send_signal(signal.SIGKILL)  # its reaper ends proc
    daemon_b.wait(10)
    wait_for(lambda: not node_processes(machines, "b", "proc.py"), 30, "proc to end with its daemon")
    # Edited while both are down: b's restart runs the files the dataflow started with, which the
    # coordinator kept on disk (supervision.keptoffers); it ran the edit before.
    marker = machines.tmp / "edited-proc-ran"
    (machines.tmp / "proc.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    machines.start_coordinator()
    wait_for(lambda: machines.nodes("cd").get("proc", {}).get("status") == "lost", 60, "proc shown lost")
    proc = machines.nodes("cd")["proc"]
    assert proc["machine"] == "b" and "not reported by machine 'b'" in proc["detail"], proc
    assert dataflow_row(machines, "cd")["status"] == "degraded"
    assert dataflow_row(machines, "cd")["log_dir"] == log_dir  # the folder the start named, not a new one
    count = len(received(machines.tmp))
    machines.start_daemon("b")  # reports without the dataflow: proc's restart policy applies
    wait_for(lambda: machines.nodes("cd").get("proc", {}).get("status") == "running", 60, "proc to restart on b")
    assert machines.nodes("cd")["proc"]["restarts"] == 1
    wait_for(lambda: len(received(machines.tmp)) > count + 3, 60, "data through the restarted proc")
    assert not marker.exists()
    log = "".join(p.read_text() for p in sorted(machines.tmp.glob("a-coordinator-*.log")))
    assert ("proc on machine 'b' run the files the dataflow started with, as its other nodes do; changed since: "
            "proc.py") in log, log[-2000:]
    out = machines.cli("stop", "cd")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: not list(offers.glob("*/*")), 30, "the kept start files to go with the dataflow")
    assert sorted(p.name for p in Path(log_dir).iterdir()) == ["log_act.txt", "log_proc.txt", "log_sensor.txt"]
    assert len([p for p in Path(log_dir).parent.iterdir() if p.is_dir()]) == 1, "a second log folder"


def test_mutual_tls_between_machines(machines: Machines) -> None:
    machines.use_tls()
    start_flow(machines, "tls", "--open")  # an open dataflow: the machines' network, mutual TLS alone
    assert {n: s["machine"] for n, s in machines.nodes("tls").items()} == {"sensor": "a", "proc": "b", "act": "a"}
    out = machines.cli("stop", "tls")
    assert out.returncode == 0, out.stderr


def test_one_certificate_per_machine_from_dora_zenoh_certs(machines: Machines) -> None:
    """The setup docs/machines.md starts from: each machine has its own certificate (naming its own
    address only) from `dora-zenoh certs`, in DORA_ZENOH_TLS; the dataflow is closed, as by default."""
    machines.use_certs()
    start_flow(machines, "certs")
    assert {n: s["machine"] for n, s in machines.nodes("certs").items()} == {"sensor": "a", "proc": "b", "act": "a"}
    got = received(machines.tmp)
    assert [seq for seq, _ in got] == list(range(got[0][0], got[0][0] + len(got))), got  # none lost on the way
    out = machines.cli("stop", "certs")
    assert out.returncode == 0, out.stderr


def tick_and_viewer(net: Machines, name: str, tick_on: str, more: str = "") -> tuple[Path, str]:
    """A YAML with a `tick` node on machine ``tick_on`` (a number at 20 Hz, printed every 10th) and a
    dynamic `viewer` of it (``more``: further nodes' YAML), and the script of that viewer (dataflow
    ``name``), which prints its first number and ends."""
    (net.tmp / "tick.py").write_text(textwrap.dedent("""
        from dora import Node
        node = Node()
        for i, event in enumerate(node):
            if event["type"] == "INPUT":
                node.send_output("n", i.to_bytes(8, "little"))
                if i % 10 == 0:
                    print("tick", i, flush=True)
    """))
    yaml = net.tmp / f"{name}.yml"
    yaml.write_text(textwrap.dedent(f"""
        nodes:
          - id: tick
            path: tick.py
            deploy: {{machine: {tick_on}}}
            inputs: {{t: dora/timer/millis/50}}
            outputs: [n]
          - id: viewer
            path: dynamic
            inputs: {{n: tick/n}}
    """) + textwrap.indent(textwrap.dedent(more), "  "))
    viewer = textwrap.dedent(f"""
        from dora_zenoh import Node
        for event in Node("viewer", dataflow="{name}"):
            if event["type"] == "INPUT":
                print("viewer got", int.from_bytes(bytes(event["value"].to_numpy()), "little"), flush=True)
                break
    """)
    return yaml, viewer


def test_a_dynamic_node_started_by_hand_on_another_machine_joins(machines: Machines) -> None:
    """The issue's way in before daemons: a script on machine b, given only the coordinator's
    endpoint, as `Node("viewer")` of an open dataflow. It tried to listen on the coordinator's
    address (Zenoh: "Can not create a new TCP listener"; DORA_ZENOH_LISTEN by hand was the way
    out), and the coordinator's part, with no node of its own to run, had closed: no dataflow
    answered for its dynamic node."""
    machines.use_certs()
    machines.start_coordinator()
    machines.start_daemon("a")
    yaml, viewer = tick_and_viewer(machines, "dynb", "a")
    out = machines.cli("start", str(yaml), "--name", "dynb", "--detach", "--open")
    assert out.returncode == 0, out.stderr
    env = {k: v for k, v in machines.env_of("b").items() if k != "DORA_ZENOH_LISTEN"}

    def join_from_b() -> None:
        res = subprocess.run(["ip", "netns", "exec", machines.ns["b"], sys.executable, "-c", viewer],
                             capture_output=True, text=True, timeout=90, env=env, cwd=machines.tmp)
        assert res.returncode == 0 and "viewer got" in res.stdout, res.stdout + res.stderr

    join_from_b()
    # A restarted coordinator re-adopts the dataflow and answers its dynamic nodes again (its
    # adopted part had nothing to run and answered none)
    machines.procs[0].send_signal(signal.SIGKILL)
    machines.procs[0].wait(10)
    machines.start_coordinator()
    wait_for(lambda: machines.nodes("dynb").get("tick", {}).get("status") == "running", 60, "the adoption")
    join_from_b()
    # ... and `stop` gives it dora's STOP "MANUAL" (it had only its inputs closed, as the
    # coordinator's part, having no node to run, no longer read its stop requests)
    staying = textwrap.dedent("""
        from dora_zenoh import Node
        for event in Node("viewer", dataflow="dynb"):
            print(event["type"], event.get("id"), flush=True)
    """)
    log = machines.tmp / "viewer.log"
    with open(log, "w") as f:
        viewer_proc = subprocess.Popen(["ip", "netns", "exec", machines.ns["b"], sys.executable, "-c", staying],
                                       stdout=f, stderr=subprocess.STDOUT, env=env, cwd=machines.tmp)
    try:
        wait_for(lambda: "INPUT n" in log.read_text(), 60, "the viewer's first input")
        out = machines.cli("stop", "dynb")
        assert out.returncode == 0, out.stderr
        assert viewer_proc.wait(60) == 0
    finally:
        viewer_proc.kill()
    assert "STOP MANUAL" in log.read_text(), log.read_text()


def test_a_closed_dataflow_is_joined_on_a_machine_that_runs_some_of_it(machines: Machines) -> None:
    """A closed dataflow (`start`'s default) from machine b, as its daemon's user: a dynamic node and
    `topic echo -d NAME` get its credentials from b's daemon, and `logs [-f]` and `list NAME` show
    b's nodes. The coordinator's control socket is on a only: they found no one to ask there
    ("no coordinator is running"), and the only way in was `start --open`."""
    machines.use_certs()
    machines.start_coordinator()
    machines.start_daemon("a")
    machines.start_daemon("b")
    yaml, viewer = tick_and_viewer(machines, "cdyn", "b", """
        - id: sink
          path: sink.py
          deploy: {machine: a}
          inputs: {n: tick/n}
    """)
    (machines.tmp / "sink.py").write_text("from dora import Node\nfor event in Node():\n    pass\n")
    out = machines.cli("start", str(yaml), "--name", "cdyn", "--detach")
    assert out.returncode == 0, out.stderr
    res = subprocess.run(["ip", "netns", "exec", machines.ns["b"], sys.executable, "-c", viewer],
                         capture_output=True, text=True, timeout=90, env=machines.env_of("b"), cwd=machines.tmp)
    assert res.returncode == 0 and "viewer got" in res.stdout, res.stdout + res.stderr
    out = machines.cli("topic", "echo", "-d", "cdyn", "tick/n", "--count", "2", "--format", "json",
                       "--timeout", "30s", on="b")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 2, out.stdout
    out = machines.cli("join", "cdyn", on="b")
    assert out.returncode == 0 and "export DORA_ZENOH_SECRET_FILE=" in out.stdout, out.stdout + out.stderr
    # the daemon answers that, and only for what runs on its machine; the rest is the coordinator's
    out = machines.cli("join", "elsewhere", on="b")
    assert out.returncode == 1 and "machine 'b' runs no node of a dataflow 'elsewhere'" in out.stderr, out.stderr
    out = machines.cli("stop", "cdyn", on="b")
    assert out.returncode == 1, out.stdout
    assert f"run `dora-zenoh stop` on the coordinator's machine ({machines.coordinator})" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    # another user of b finds no desk of its own: told where the coordinator is, not that none runs
    other = {**machines.env_of("b"), "DORA_ZENOH_CONTROL_BASE": str(machines.tmp / "nobody")}
    res = subprocess.run(["ip", "netns", "exec", machines.ns["b"], sys.executable, "-m", "dora_zenoh", "stop", "cdyn"],
                         capture_output=True, text=True, timeout=60, env=other, cwd=machines.tmp)
    assert res.returncode == 1 and f"the coordinator on {machines.coordinator} runs on another machine" in res.stderr, \
        res.stderr
    out = machines.cli("list", on="b")
    assert out.returncode == 0, out.stderr
    assert [(row[0], row[2]) for row in map(str.split, out.stdout.splitlines()) if row[:1] == ["cdyn"]] == [
        ("cdyn", "running")], out.stdout
    assert "(the dataflows with nodes on machine 'b'" in out.stdout, out.stdout
    # another machine's node is named by its machine id there too (it reported its host name)
    out = machines.cli("node", "list", "-d", "cdyn", "--json", on="b")
    assert out.returncode == 0, out.stderr
    assert {n["id"]: n["machine"] for n in json.loads(out.stdout)} == {"tick": "b", "sink": "a"}, out.stdout
    out = machines.cli("check", str(yaml), on="b")
    assert out.returncode == 0, out.stderr
    assert "not checked: on machine 'b': `dora-zenoh check` on the coordinator's machine" in out.stdout, out.stdout
    out = machines.cli("build", str(yaml), on="b")
    assert out.returncode == 0 and "this is machine 'b': this builds its node(s) (tick) here" in out.stderr, out.stderr
    out = machines.cli("graph", "cdyn", "--format", "json", on="b")
    assert out.returncode == 0, out.stderr
    placed = {v["id"]: v["machine"] for v in json.loads(out.stdout)["vertices"] if v["kind"] == "node"}
    assert placed == {"tick": "b", "sink": "a"}, out.stdout  # (sink was drawn on "the coordinator's machine")
    out = machines.cli("list", "cdyn", on="b")
    assert out.returncode == 0, out.stderr
    assert "running" in out.stdout and "(the nodes of machine 'b' only" in out.stdout, out.stdout
    assert [line.split()[:2] for line in out.stdout.splitlines() if line.startswith("tick")] == [["tick", "b"]]
    out = machines.cli("logs", "cdyn", "tick", on="b")
    assert out.returncode == 0 and "tick 0" in out.stdout, out.stdout + out.stderr
    out = machines.cli("logs", "cdyn", "sink", on="b")  # a's node: b's daemon says where it runs
    assert out.returncode == 1 and "node 'sink' of dataflow 'cdyn' does not run on machine 'b' but on 'a'" \
        in out.stderr, out.stderr
    out = machines.cli("logs", "cdyn", "nosuch", on="b")
    assert out.returncode == 1 and "dataflow 'cdyn' has no node 'nosuch' (nodes: tick, viewer, sink)" in out.stderr, \
        out.stderr
    # `logs -f` there: the lines as they come (cast on b's own control socket), until the dataflow ends
    seen = len(out.stdout.splitlines())
    follow_log = machines.tmp / "follow.log"
    with open(follow_log, "w") as f:
        follow = subprocess.Popen(["ip", "netns", "exec", machines.ns["b"], sys.executable, "-m", "dora_zenoh",
                                   "logs", "-f", "cdyn", "tick"], stdout=f, stderr=subprocess.STDOUT,
                                  env=machines.env_of("b"), cwd=machines.tmp)
    try:
        wait_for(lambda: len(follow_log.read_text().splitlines()) > seen + 2, 60, "lines followed on b")
        out = machines.cli("stop", "cdyn")
        assert out.returncode == 0, out.stderr
        assert follow.wait(60) == 0, follow_log.read_text()
    finally:
        follow.kill()
    lines = follow_log.read_text().splitlines()
    numbers = [int(line.split()[-1]) for line in lines if line.startswith("tick")]
    assert numbers == list(range(0, 10 * len(numbers), 10)), lines  # in order, none twice, none missed


FORGER = Path(__file__).with_name("forger.py")  # a foreign session that forges data and facts


def listeners(net: Machines, m: str) -> list[str]:
    """The TLS endpoints listening in machine ``m``'s namespace, but the coordinator's and the daemon's hubs."""
    out = subprocess.run(["ip", "netns", "exec", net.ns[m], "ss", "-Htln"], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    addrs = [line.split()[3] for line in out.splitlines() if line.split()[3].startswith(net.addr[m] + ":")]
    return [f"tls/{a}" for a in addrs if int(a.rsplit(":", 1)[1]) not in (net.port, 7448)]


def test_a_closed_dataflow_across_machines(machines: Machines) -> None:
    """`start` closes a dataflow across machines too: the coordinator's credentials reach b's daemon
    with its `spawn`; data crosses the machines; a holder of a machine certificate without them gets no
    link to any of the dataflow's listeners, on either machine, and forges nothing; a restarted
    coordinator adopts it and the owner's tools reach it again."""
    machines.use_tls()
    start_flow(machines, "closedx")  # closed by default (`--open` opens it: then the session below links)
    ports = listeners(machines, "a") + listeners(machines, "b")
    assert len(ports) >= 5, ports  # a's part, sensor, act; b's part, proc (each listens)
    # A session with a valid certificate of the machines' CA but not the dataflow's credentials dials
    # every listener of both machines but the coordinator's and the daemons' hubs (those are the
    # closed dataflow's parts and nodes), then forges data, an end of stream and exit/stop facts.
    tls = json.loads(Path(machines.env["DORA_ZENOH_ZENOH_CONFIG"]).read_text())["transport"]["link"]["tls"]
    (machines.tmp / "machine-tls.json").write_text(json.dumps(tls))
    attack = subprocess.run(["ip", "netns", "exec", machines.ns["b"], sys.executable, str(FORGER), "closedx", "proc",
                             "cmd", *ports, "--tls", str(machines.tmp / "machine-tls.json"), "--settle", "3"],
                            capture_output=True, text=True, timeout=60, env=machines.env)
    assert attack.returncode == 0, attack.stderr
    assert "linked peers: 0" in attack.stdout, (attack.stdout, ports)
    count = len(received(machines.tmp))
    wait_for(lambda: len(received(machines.tmp)) > count + 5, 60, "data to flow on after the attack")
    assert {size for _, size in received(machines.tmp)} == {24}  # nothing forged reached act
    nodes = machines.nodes("closedx")
    assert {n: (s["machine"], s["status"]) for n, s in nodes.items()} == {
        "sensor": ("a", "running"), "proc": ("b", "running"), "act": ("a", "running")}, nodes
    # The owner's tool joins it by name (the credentials of a's part, TLS to its listener).
    echo = ("topic", "echo", "-d", "closedx", "proc/cmd", "--count", "2", "--format", "json", "--timeout", "30s")
    out = machines.cli(*echo)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 2, out.stdout
    # A restarted coordinator adopts it and joins its network with the credentials a daemon kept.
    machines.procs[0].send_signal(signal.SIGKILL)
    machines.procs[0].wait(10)
    machines.start_coordinator()
    wait_for(lambda: set(machines.nodes("closedx")) == {"sensor", "proc", "act"}, 60, "the dataflow's adoption")
    out = machines.cli(*echo)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 2, out.stdout
    out = machines.cli("stop", "closedx")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: all(s["status"] in ("succeeded", "stopped") for s in machines.nodes("closedx").values()),
             60, "every node to stop cleanly")
    assert not list(machines.tmp.glob("state/**/credentials"))


def test_a_daemon_with_a_foreign_certificate_does_not_join(machines: Machines) -> None:
    machines.use_tls()
    machines.start_coordinator()
    foreign = make_certs(machines.tmp / "foreign", [machines.addr["b"]])
    machines.env["DORA_ZENOH_ZENOH_CONFIG"] = str(tls_config(machines.tmp / "zenoh-foreign.json5", foreign))
    daemon = machines.start_daemon("b", wait=False)
    # Zenoh retries the refused link silently: the daemon redoes the handshake, names the CA
    # that does not match and exits (before 5 Dec it warned of no link and tried for ever)
    assert daemon.wait(60) == 1
    log = Path(daemon.stderr.name).read_text()  # type: ignore[union-attr]
    assert f"cannot link to the coordinator at {machines.coordinator}" in log, log
    assert f"is not signed by your CA {foreign['ca.pem']}" in log, log
    assert "Traceback" not in log
    assert "b" not in machines.daemons()


def test_a_daemon_whose_certificate_names_another_address_says_so(machines: Machines) -> None:
    """b's certificate comes from the right CA but names another address than the one b listens
    on. b dials the coordinator (whose certificate is right), so it used to join: every node
    showed running and no data crossed, with nothing in any log (a helper's run, 4 Dec). Now the
    daemon dials its own listener as the other machines will, and exits naming the problem."""
    good = machines.use_tls()
    machines.start_coordinator()
    wrong = make_certs(machines.tmp / "wrong-address", [f"10.231.{machines.n}.9"], ca=good)
    machines.env["DORA_ZENOH_ZENOH_CONFIG"] = str(tls_config(machines.tmp / "zenoh-wrong.json5", wrong))
    daemon = machines.start_daemon("b", wait=False)
    assert daemon.wait(60) == 1
    log = Path(daemon.stderr.name).read_text()  # type: ignore[union-attr]
    assert "other machines cannot link to it on" in log and f"does not name {machines.addr['b']}" in log, log
    assert "b" not in machines.daemons()


# -- without root: what one machine says about a YAML that places nodes elsewhere ---------------------


def test_run_refuses_nodes_placed_on_other_machines(tmp_path: Path) -> None:
    yaml = write_flow(tmp_path)
    out = subprocess.run([sys.executable, "-m", "dora_zenoh", "run", str(yaml)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 1
    assert "places nodes on other machines (sensor, act on machine 'a'; proc on machine 'b')" in out.stderr
    assert "`dora-zenoh start`" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()  # nothing started

    # on machine 'a' (its id as `up` names it), a's nodes run here; b's are still refused
    env = {**os.environ, "DORA_ZENOH_MACHINE_ID": "a"}
    out = subprocess.run([sys.executable, "-m", "dora_zenoh", "run", str(yaml)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env=env)
    assert out.returncode == 1 and "places nodes on other machines (proc on machine 'b')" in out.stderr, out.stderr
    yaml.write_text(yaml.read_text().replace("machine: b", "machine: a"))
    from dora_zenoh.wire import zconfig

    out = subprocess.run([sys.executable, "-m", "dora_zenoh", "run", str(yaml), "--stop-after", "3s",
                          "--endpoint", zconfig.free_tcp_endpoint()],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "3 node(s)" in out.stderr and received(tmp_path), out.stderr  # data went sensor -> proc -> act


def test_check_names_the_machines_it_could_not_verify(tmp_path: Path) -> None:
    from dora_zenoh.wire import zconfig

    yaml = write_flow(tmp_path)
    out = subprocess.run([sys.executable, "-m", "dora_zenoh", "check", str(yaml), "--endpoint",
                          zconfig.free_tcp_endpoint()], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "(machines a, b not checked: no coordinator answers)" in out.stdout


def test_start_and_logs_follow_the_lines_of_a_node_on_another_machine(machines: Machines) -> None:
    """`start` (attached) and `logs -f` printed nothing new of a node on another machine (its
    daemon kept its lines to itself); now the coordinator relays them while someone follows."""
    (machines.tmp / "talker.py").write_text(textwrap.dedent("""
        import time
        from dora import Node
        node = Node()
        for i in range(60):
            print("line", i, flush=True)
            time.sleep(0.1)
    """))
    yaml = machines.tmp / "talk.yml"
    yaml.write_text("nodes:\n  - id: talker\n    path: talker.py\n    deploy: {machine: b}\n")
    machines.start_coordinator()
    machines.start_daemon("b")
    cmd = ["ip", "netns", "exec", machines.ns["a"], sys.executable, "-m", "dora_zenoh"]
    attached = subprocess.Popen([*cmd, "start", str(yaml), "--name", "talk"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=machines.env, cwd=machines.tmp)
    follow = None
    try:
        wait_for(lambda: "line 5\n" in machines.cli("logs", "talk", "talker").stdout, 60, "the node's lines")
        follow = subprocess.Popen([*cmd, "logs", "talk", "talker", "-f"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=machines.env, cwd=machines.tmp)
        followed, _ = follow.communicate(timeout=90)  # ends with the dataflow
        out, _ = attached.communicate(timeout=90)
    finally:
        for p in (attached, follow):
            if p is not None and p.poll() is None:
                p.kill()
    numbers = [int(line.split()[1]) for line in followed.splitlines() if line.startswith("line ")]
    assert numbers == list(range(numbers[0], 60)) and numbers[0] <= 5, followed  # the tail, then every new line
    shown = [int(line.split()[2]) for line in out.splitlines() if line.startswith("[talker] line ")]
    assert shown and shown[-1] == 59 and shown == sorted(set(shown)), out
    assert "finished: 1 node(s) succeeded, 1 on machine 'b'" in out, out


def _write_together(machines: Machines, model_delay: float) -> tuple[Path, Path]:
    """test_start_gate's dataflow on two machines: source and sink on a, `other` on b, which
    reads and sends nothing and calls Node() after ``model_delay`` s (a model loading). Returns
    the YAML and the folder of their results."""
    out = machines.tmp / "results"
    out.mkdir()
    for name, text in (("source", SOURCE), ("sink", SINK), ("other", OTHER)):
        (machines.tmp / f"{name}.py").write_text(textwrap.dedent(text))
    (machines.tmp / ".dora-zenoh-ignore").write_text("*.log\n/results/\n/state/\nrunner_zid\n")
    yaml = machines.tmp / "dataflow.yml"
    yaml.write_text(textwrap.dedent(f"""
        nodes:
          - id: source
            path: source.py
            deploy: {{machine: a}}
            inputs: {{tick: dora/timer/millis/10}}
            outputs: [out]
            env: {{OUT: {str(out)!r}}}
          - id: sink
            path: sink.py
            deploy: {{machine: a}}
            inputs: {{in: source/out}}
            env: {{OUT: {str(out)!r}}}
          - id: other
            path: other.py
            deploy: {{machine: b}}
            outputs: [unused]
            env: {{OUT: {str(out)!r}, DELAY: "{model_delay}"}}
    """))
    machines.start_coordinator()
    machines.start_daemon("a")
    machines.start_daemon("b")
    return yaml, out


def _results(out: Path, nodes: tuple[str, ...]) -> list[dict]:
    """The nodes' results, once each file holds its whole JSON: a node creates its file before it
    writes it (a read in between got '' once in CI)."""
    files = [out / f"{n}.json" for n in nodes]
    got: list[dict] = []

    def complete() -> bool:
        try:
            got[:] = [json.loads(f.read_text()) for f in files]
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return True

    wait_for(complete, 90, f"the results of {', '.join(nodes)}")
    return got


def test_nodes_on_every_machine_start_together(machines: Machines) -> None:
    """The start gate spans the machines, as dora-rs's: the source on a leaves ``Node()`` only
    after `other` on b, which reads and sends it nothing, called its own (3 s late, a model
    loading), and its timer does not tick meanwhile."""
    yaml, out = _write_together(machines, 3)
    res = machines.cli("start", str(yaml), "--name", "together", "--detach")
    assert res.returncode == 0, res.stderr
    source, sink, other = _results(out, ("source", "sink", "other"))
    assert source["returned"] >= other["before"], (source, other)  # (one clock: namespaces share it)
    assert sink["got"] == 5  # no tick dropped, nothing sent before the sink was ready


def test_a_node_late_on_another_machine_is_named_and_not_waited_for(machines: Machines) -> None:
    """`other` on b takes 60 s before Node(), the start timeout is 3 s: the nodes on a start
    without it, and a's part names it with its machine."""
    machines.env["DORA_ZENOH_START_TIMEOUT"] = "3"
    yaml, out = _write_together(machines, 60)
    res = machines.cli("start", str(yaml), "--name", "late", "--detach")
    assert res.returncode == 0, res.stderr
    _, sink = _results(out, ("source", "sink"))
    assert sink["got"] == 5 and not (out / "other.json").exists()
    logs = "".join(p.read_text(errors="replace") for p in machines.tmp.glob("a-*.log"))
    assert "other (machine 'b') did not start (no Node() ready) within 3 s" in logs, logs[-3000:]
