"""Mutual TLS between two machines, played by two network namespaces joined by a veth pair.

Needs root (ip netns); the namespaces and their addresses (10.231.N.1/.2) exist only for the
test and are deleted afterwards, also on failure. Certificates come from `dora-zenoh certs`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2 to create network namespaces")

EXAMPLES = ROOT / "examples" / "ros-like"


class Pair:
    """Namespaces A (10.231.N.1) and B (10.231.N.2) linked by a veth pair."""

    def __init__(self) -> None:
        tag = os.getpid() % 100000
        self.a, self.b = f"dzsa{tag}", f"dzsb{tag}"
        subnet = 10 + os.getpid() % 200
        self.ip_a, self.ip_b = f"10.231.{subnet}.1", f"10.231.{subnet}.2"
        self.procs: list[subprocess.Popen] = []
        self.made: list[str] = []
        for ns in (self.a, self.b):
            self._ip("netns", "add", ns)
            self.made.append(ns)
        self._ip("link", "add", f"va{tag}", "netns", self.a, "type", "veth", "peer", "name", f"vb{tag}",
                 "netns", self.b)
        for ns, dev, ip in ((self.a, f"va{tag}", self.ip_a), (self.b, f"vb{tag}", self.ip_b)):
            self._ip("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            self._ip("-n", ns, "link", "set", dev, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    def popen(self, ns: str, script: Path, env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(script)],
                                env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def run(self, ns: str, script: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(script)], env=dict(os.environ, **env),
                              capture_output=True, text=True, timeout=timeout)

    def cleanup(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.communicate(timeout=10)
        for ns in self.made:  # deleting a namespace deletes its end of the veth, and so the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.fixture
def pair():
    p = Pair()
    try:
        yield p
    finally:
        p.cleanup()


def _certs(folder: Path, *machines: tuple[str, str]) -> None:
    assert cli("certs", "ca", "--dir", str(folder)).returncode == 0
    for name, ip in machines:
        res = cli("certs", "machine", name, "--ip", ip, "--dir", str(folder))
        assert res.returncode == 0, res.stderr


def test_nodes_on_two_machines_talk_only_with_valid_certificates(pair, tmp_path):
    good, foreign = tmp_path / "good", tmp_path / "foreign"
    _certs(good, ("a", pair.ip_a), ("b", pair.ip_b))
    _certs(foreign, ("b", pair.ip_b))
    mixed = tmp_path / "mixed"  # B trusts the right CA but presents a certificate A does not trust
    mixed.mkdir()
    for src in (foreign / "b.pem", foreign / "b.key", good / "ca.pem"):
        shutil.copy(src, mixed / src.name)
    hub = f"tls/{pair.ip_a}:7449"
    talker = pair.popen(pair.a, EXAMPLES / "talker.py", {"DORA_ZENOH_ENDPOINT": hub, "COUNT": "100000",
                                                         "DORA_ZENOH_TLS": str(good / "a.pem")})
    listen_b = {"DORA_ZENOH_ENDPOINT": hub, "DORA_ZENOH_LISTEN": f"tls/{pair.ip_b}:0", "COUNT": "3"}

    ok = pair.run(pair.b, EXAMPLES / "listener.py", dict(listen_b, DORA_ZENOH_TLS=str(good / "b.pem")))
    assert ok.returncode == 0, ok.stderr
    assert len([line for line in ok.stdout.splitlines() if line.startswith("heard: hello ")]) == 3

    # B does not trust A's certificate (another CA): refused, and the message names B's CA file
    res = pair.run(pair.b, EXAMPLES / "listener.py", dict(listen_b, DORA_ZENOH_TLS=str(foreign / "b.pem")))
    assert res.returncode != 0 and "heard" not in res.stdout
    assert f"is not signed by your CA {foreign / 'ca.pem'}" in res.stderr, res.stderr

    # A does not trust B's certificate: refused, and the message names B's certificate
    res = pair.run(pair.b, EXAMPLES / "listener.py", dict(listen_b, DORA_ZENOH_TLS=str(mixed / "b.pem")))
    assert res.returncode != 0 and "heard" not in res.stdout
    assert f"refused your certificate {mixed / 'b.pem'}" in res.stderr, res.stderr

    # no certificates at all: a network endpoint without TLS settings is refused before anything opens
    res = pair.run(pair.b, EXAMPLES / "listener.py", listen_b)
    assert res.returncode != 0 and "needs certificates" in res.stderr, res.stderr
    assert talker.poll() is None


def test_plain_tcp_to_the_network_needs_an_explicit_opt_out(pair, tmp_path):
    hub = f"tcp/{pair.ip_a}:7450"
    env = {"DORA_ZENOH_ENDPOINT": hub, "COUNT": "100000"}
    refused = pair.run(pair.a, EXAMPLES / "talker.py", env, timeout=30)
    assert refused.returncode != 0
    assert f"{hub} would accept anyone on the network" in refused.stderr
    assert "DORA_ZENOH_INSECURE_NETWORK=1" in refused.stderr

    insecure = {"DORA_ZENOH_INSECURE_NETWORK": "1"}
    talker = pair.popen(pair.a, EXAMPLES / "talker.py", dict(env, **insecure))
    res = pair.run(pair.b, EXAMPLES / "listener.py",
                   dict(env, **insecure, DORA_ZENOH_LISTEN=f"tcp/{pair.ip_b}:0", COUNT="2"))
    assert res.returncode == 0, res.stderr
    assert "without encryption or authentication" in res.stderr
    assert talker.poll() is None
