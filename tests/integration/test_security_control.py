"""Only the coordinator's user (and root, and an optional group) can operate it.

Needs root: each test creates throw-away Unix users (and a group) with useradd/groupadd,
runs the real CLI as them with runuser, and removes them afterwards, also on failure.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, Coord, loopback_daemon, wait_for

from dora_zenoh.wire.zconfig import free_tcp_endpoint

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"),
                                reason="needs root with useradd/runuser to create a second Unix user")

RUNUSER = shutil.which("runuser") or "runuser"
VERBS_NEEDING_TARGET = [("list", "{name}"), ("logs", "{name}", "idle"), ("stop", "{name}"),
                        ("stop", "{name}", "--force"), ("restart", "{name}")]


RAW_START = """
from dora_zenoh.supervision.client import Client, ControlError
try:
    with Client("{endpoint}") as c:
        print(c.call("start", path="{path}", name="raw", log_dir="{log_dir}"))
except ControlError as exc:
    print(exc)
"""


def _python_for_others() -> tuple[str, dict[str, str]]:
    """An interpreter another user can execute, with this checkout's packages on its path."""
    import site

    paths = [str(ROOT), *site.getsitepackages()]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(paths), "LANG": "C.UTF-8"}
    for candidate in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        probe = subprocess.run([RUNUSER, "-u", "nobody", "--", candidate, "-c", "import zenoh, dora_zenoh"],
                               env=env, capture_output=True, timeout=60)
        if probe.returncode == 0:
            return candidate, env
    pytest.skip("no Python interpreter that another Unix user may run has this checkout's packages")


class Users:
    """Throw-away Unix users and one group, removed (with their processes) at the end."""

    def __init__(self) -> None:
        self.tag = f"{os.getpid() % 100000}"
        self.group = f"dzg{self.tag}"
        self.names: list[str] = []
        self.dirs: list[Path] = []
        self.python, self.env = _python_for_others()  # may skip: before anything is created
        subprocess.run(["groupadd", self.group], check=True, capture_output=True, timeout=30)

    def add(self, role: str, in_group: bool = False) -> str:
        name = f"dz{role}{self.tag}"
        cmd = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
        if in_group:
            cmd[1:1] = ["-G", self.group]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        self.names.append(name)
        return name

    def home(self, name: str) -> Path:
        """A private folder of that user (in /tmp: pytest's own folders are root-only)."""
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        entry = pwd.getpwnam(name)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        self.dirs.append(folder)
        return folder

    def cli(self, name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = dict(self.env, HOME=str(cwd or "/tmp"))
        return subprocess.run([RUNUSER, "-u", name, "--", self.python, "-m", "dora_zenoh", *args], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=60)

    def python_c(self, name: str, code: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([RUNUSER, "-u", name, "--", self.python, "-c", code], cwd=cwd,
                              env=dict(self.env, HOME=str(cwd)), capture_output=True, text=True, timeout=60)

    def processes(self) -> list[psutil.Process]:
        uids = {pwd.getpwnam(n).pw_uid for n in self.names}
        return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real in uids]

    def cleanup(self) -> None:
        for proc in self.processes():  # only processes of the users this test created
            proc.kill()
        for name in self.names:
            subprocess.run(["userdel", name], capture_output=True, timeout=30)
        subprocess.run(["groupdel", self.group], capture_output=True, timeout=30)
        for folder in self.dirs:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def users():
    u = Users()
    try:
        yield u
    finally:
        u.cleanup()


def _shell_flow(folder: Path, marker: Path, uid: int | None = None) -> Path:
    yml = folder / "attack.yml"
    yml.write_text(textwrap.dedent(f"""
        nodes:
          - id: pwn
            path: shell
            args: id > {marker}
    """))
    if uid is not None:
        os.chown(yml, uid, -1)
    return yml


def _owner_flow(folder: Path) -> Path:
    (folder / "idle.py").write_text(textwrap.dedent("""
        from dora import Node
        print("ready", flush=True)
        for event in Node():
            if event["type"] == "STOP":
                break
    """))
    yml = folder / "dataflow.yml"
    yml.write_text("nodes:\n  - id: idle\n    path: idle.py\n")
    return yml


def test_other_users_cannot_operate_the_coordinator(coord, tmp_path, flow_name, users):
    stranger = users.add("x")
    member = users.add("m", in_group=True)  # in a group, but the coordinator was not given --group
    res = coord("start", str(_owner_flow(tmp_path)), "--name", flow_name, "--detach", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: "ready" in coord("logs", flow_name, "idle").stdout, what="the owner's node")
    before = coord.descendants()
    assert before, "the owner's node is not among them"

    for user in (stranger, member):
        home = users.home(user)
        marker = home / "pwned.txt"
        yml = _shell_flow(home, marker, pwd.getpwnam(user).pw_uid)
        attempts = [[v.format(name=flow_name) for v in verb] for verb in VERBS_NEEDING_TARGET]
        attempts += [["list"], ["clean"], ["down"], ["up"],
                     ["start", str(yml), "--detach", "--log-dir", str(home / "logs")],
                     ["start", str(yml), "--detach", "--log-dir", "/root/dz-attack-logs"]]
        for args in attempts:
            res = users.cli(user, *args, "--endpoint", coord.endpoint, cwd=home)
            assert res.returncode != 0, (user, args, res.stdout)
            assert "not authorized" in res.stderr, (user, args, res.stderr)
            assert "Traceback" not in res.stderr
        assert not marker.exists() and not (home / "logs").exists() and not (home / "out").exists()
    assert not Path("/root/dz-attack-logs").exists()

    # nothing spawned, the owner's dataflow untouched, the owner's CLI still works
    assert coord.descendants() == before
    assert [(r["name"], r["status"]) for r in coord.list()] == [(flow_name, "running")]
    assert coord.info()["pid"] == coord.pid
    res = coord("stop", flow_name)
    assert res.returncode == 0, res.stderr


def test_a_group_member_may_operate_only_with_group(endpoint, tmp_path, flow_name, users):
    member = users.add("m", in_group=True)
    stranger = users.add("x")
    c = Coord(endpoint, tmp_path / "coordinator.log")
    c.up("--group", users.group)
    try:
        home = users.home(member)
        marker = home / "ran.txt"
        yml = _shell_flow(home, marker, pwd.getpwnam(member).pw_uid)
        res = users.cli(member, "start", str(yml), "--name", flow_name, "--endpoint", endpoint, cwd=home)
        assert res.returncode == 0, res.stderr
        assert marker.exists()  # the member's own dataflow ran, logs in the member's folder
        assert (home / "out").is_dir()
        res = users.cli(member, "list", "--endpoint", endpoint, cwd=home)
        assert res.returncode == 0 and flow_name in res.stdout, res.stderr

        # paths the member could not write (or read) themselves are refused, and nothing runs
        private = Path(tempfile.mkdtemp(prefix="dz-owner-private-"))
        users.dirs.append(private)
        res = users.cli(member, "start", str(yml), "--name", flow_name + "-2", "--detach",
                        "--log-dir", str(private / "logs"), "--endpoint", endpoint, cwd=home)
        assert res.returncode != 0 and "cannot write --log-dir" in res.stderr, res.stderr
        secret = private / "secret.yml"
        _shell_flow(private, private / "ran.txt")
        (private / "attack.yml").rename(secret)
        os.chmod(private, 0o755)
        os.chmod(secret, 0o600)
        # the CLI would refuse to read it first; a raw client goes straight to the coordinator
        res = users.python_c(member, RAW_START.format(endpoint=endpoint, path=secret, log_dir=home / "l3"),
                             cwd=home)
        assert "cannot read the dataflow file" in res.stdout, (res.stdout, res.stderr)
        assert not (private / "logs").exists() and not (private / "ran.txt").exists()
        assert not (home / "l3").exists()
        assert [r["name"] for r in c.list()] == [flow_name]

        # someone outside the group is still refused
        res = users.cli(stranger, "list", "--endpoint", endpoint, cwd="/tmp")
        assert res.returncode != 0 and "not authorized" in res.stderr
        assert f"group '{users.group}'" in res.stderr
        assert grp.getgrnam(users.group).gr_mem == [member]
    finally:
        c.teardown()


RAW_DAEMON = """
import json, sys, zenoh
for endpoint in {endpoints!r}:
    for mode in ("client", "peer"):
        conf = zenoh.Config()
        conf.insert_json5("mode", json.dumps(mode))
        conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
        conf.insert_json5("scouting/multicast/enabled", "false")
        s = zenoh.open(conf)
        for verb, args in (("list", {{}}), ("spawn", {{"path": "{path}", "name": "pwn", "id": "x", "nodes": ["pwn"]}})):
            got = [r.ok.payload.to_string() for r in s.get("dora/@dz/daemon/{machine}/ctl/" + verb,
                                                           payload=json.dumps(args), timeout=3) if r.ok]
            print(endpoint, mode, verb, json.dumps(got), flush=True)
        s.close()
"""


def test_a_daemon_of_this_machine_takes_commands_only_from_its_coordinator(coord, tmp_path, flow_name, users):
    """A daemon on a loopback hub ran whatever any local user asked of it (a `spawn` over its
    TCP port ran a program as the daemon's user). It now takes commands, and reports, only over
    the coordinator's control socket; the coordinator's own commands still reach it."""
    machine = f"m{flow_name[-6:]}"
    listen = free_tcp_endpoint()
    with loopback_daemon(coord, tmp_path, machine, listen):
        attacker = users.add("d")
        home = users.home(attacker)
        marker = home / "pwned.txt"
        yml = _shell_flow(home, marker, pwd.getpwnam(attacker).pw_uid)
        res = users.python_c(attacker, RAW_DAEMON.format(endpoints=[listen, coord.endpoint], path=yml,
                                                         machine=machine), cwd=home)
        lines = res.stdout.splitlines()
        assert len(lines) == 8, (res.stdout, res.stderr)  # 2 endpoints x 2 modes x 2 verbs, all asked
        assert all(line.endswith(" []") for line in lines), res.stdout  # not one answer
        assert not marker.exists()

        # the coordinator still commands it: a node placed there runs, as the coordinator's user
        ran = tmp_path / "ran.txt"
        owner_yml = tmp_path / "placed.yml"
        owner_yml.write_text(textwrap.dedent(f"""
            nodes:
              - id: placed
                path: shell
                args: id -u > {ran}
                deploy: {{machine: {machine}}}
        """))
        res = coord("start", str(owner_yml), "--name", flow_name, "--attach", cwd=tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        assert ran.read_text().strip() == str(os.getuid())
        assert "commands over its control socket" in (tmp_path / f"daemon-{machine}.log").read_text()
