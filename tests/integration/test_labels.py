"""``deploy: {labels: ...}`` (dora 1.x): a node runs on a machine whose daemon has the labels
(needs root: test_machines.py's two network namespaces, cleaned up also on failure)."""
from __future__ import annotations

import json

import pytest
from test_machines import Machines, machines, received, wait_for, write_flow  # noqa: F401 (machines: a fixture)

pytestmark = pytest.mark.timeout(240)


def test_a_node_runs_where_its_labels_are(machines: Machines) -> None:  # noqa: F811
    net = machines
    net.start_coordinator()
    net.start_daemon("a")
    net.spawn("b", "daemon", "--machine-id", "b", "--coordinator", net.coordinator,
              "--listen", f"tcp/{net.addr['b']}:7448", "--insecure-tcp", "--labels", "gpu=true,arch=x86_64")
    wait_for(lambda: "b" in net.daemons(), 30, "daemon b to join")
    yaml = write_flow(net.tmp)
    yaml.write_text(yaml.read_text().replace("deploy: {machine: b}", "deploy: {labels: {gpu: true}}"))
    wrong = net.tmp / "wrong.yml"
    wrong.write_text(yaml.read_text().replace("{gpu: true}", "{gpu: true, arch: arm64}"))

    out = net.cli("check", str(yaml))
    assert out.returncode == 0 and "node 'proc' would run on machine 'b' (its labels)" in out.stdout, out
    out = net.cli("run", str(yaml))  # no daemons in `run`: refused, naming where the node wanted to go
    assert out.returncode != 0 and "proc on a machine labelled gpu=true" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr

    out = net.cli("start", str(wrong), "--name", "wrong", "--detach")
    assert out.returncode != 0, out.stdout
    assert ("no connected daemon has the labels: node 'proc' asks for arch=arm64,gpu=true (daemons: 'a' (no "
            "labels); 'b' arch=x86_64,gpu=true)") in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    listed = json.loads(net.cli("list", "--json").stdout)
    assert not [d for d in listed if d["name"] == "wrong"], listed  # nothing started anywhere

    out = net.cli("start", str(yaml), "--name", "lab", "--detach")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: len(received(net.tmp)) >= 3, 60, "data through the labelled node")
    nodes = net.nodes("lab")
    assert {n: s["machine"] for n, s in nodes.items()} == {"sensor": "a", "proc": "b", "act": "a"}, nodes
    out = net.cli("stop", "lab")
    assert out.returncode == 0, out.stderr
