"""The link plan: one Zenoh link per edge of the graph, plus each node's hub link."""
from __future__ import annotations

import errno
import socket
import textwrap
from pathlib import Path

import pytest

from dora_zenoh.descriptor import load_descriptor
from dora_zenoh.supervision.topology import LinkPlan, Links
from dora_zenoh.wire import zconfig

HUB = "tcp/127.0.0.1:7999"


def plan(tmp_path: Path, yaml: str, hub: str = HUB) -> LinkPlan:
    for script in ("a.py", "b.py", "c.py", "d.py"):
        (tmp_path / script).write_text("")
    (tmp_path / "dataflow.yml").write_text(textwrap.dedent(yaml))
    return LinkPlan(load_descriptor(tmp_path / "dataflow.yml"), hub)


def test_each_node_dials_the_hub_and_only_its_sources(tmp_path):
    p = plan(tmp_path, """
        nodes:
          - {id: a, path: a.py, inputs: {tick: dora/timer/millis/10}, outputs: [o]}
          - {id: b, path: b.py, inputs: {i: a/o}, outputs: [o]}
          - {id: c, path: c.py, inputs: {x: a/o, y: b/o}}
    """)
    ports = {n: p.listen[n] for n in "abc"}
    assert len(set(ports.values())) == 3 and all(e.startswith("tcp/127.0.0.1:") for e in ports.values())
    assert p.links("a") == Links(ports["a"], [])  # a timer is not a node
    assert p.links("b") == Links(ports["b"], [ports["a"]])
    assert p.links("c") == Links(ports["c"], [ports["a"], ports["b"]])
    assert p.connections() == 3  # the graph's edges, not n * (n - 1) / 2


def test_a_pair_reading_each_other_makes_one_link_and_dynamic_nodes_are_not_dialled(tmp_path):
    p = plan(tmp_path, """
        nodes:
          - {id: ping, path: a.py, inputs: {pong: pong/o}, outputs: [o]}
          - {id: pong, path: b.py, inputs: {ping: ping/o}, outputs: [o]}
          - {id: plot, path: dynamic, inputs: {ping: ping/o}, outputs: [o]}
          - {id: late, path: c.py, inputs: {p: plot/o, q: ping/o}}
    """)
    assert p.links("ping").upstreams == []
    assert p.links("pong").upstreams == [p.listen["ping"]]
    assert p.links("plot") is None  # started by hand: gossip links it
    assert p.links("late").upstreams == [p.listen["ping"]]
    assert p.connections() == 2


def test_no_plan_for_a_hub_that_is_not_tcp(tmp_path):
    p = plan(tmp_path, """
        nodes:
          - {id: a, path: a.py, outputs: [o]}
          - {id: b, path: b.py, inputs: {i: a/o}}
    """, hub="unixsock-stream//tmp/dz.sock")
    assert not p.enabled and p.links("b") is None


def test_planned_ports_are_held_for_their_nodes_until_released(tmp_path):
    """Between the plan and a node's listener, another process's bind (or ``bind(0)``, as every
    runner picks ports) could take a planned port: the plan holds each one, and a node's Zenoh
    listener can bind it all the same."""
    p = plan(tmp_path, """
        nodes:
          - {id: a, path: a.py, outputs: [o]}
          - {id: b, path: b.py, inputs: {i: a/o}}
    """)
    port, unused = (int(p.listen[n].rsplit(":", 1)[1]) for n in "ab")
    try:
        for held in (port, unused):
            with socket.socket() as other, pytest.raises(OSError) as taken:
                other.bind(("127.0.0.1", held))
            assert taken.value.errno == errno.EADDRINUSE
        node = zconfig.open_peer([], [p.listen["a"]])
        try:
            reader = zconfig.open_peer([p.listen["a"]], [])
            try:
                assert zconfig.wait_for_peers(reader, 10.0)
            finally:
                reader.close()
        finally:
            node.close()
    finally:
        p.release()
    with socket.socket() as other:  # let go (b's: a's may be in TIME_WAIT after its link)
        other.bind(("127.0.0.1", unused))
