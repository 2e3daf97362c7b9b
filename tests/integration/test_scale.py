"""Many nodes, and a supervisor that pauses: real `dora-zenoh run` processes on loopback.

Speed belongs in ``scripts/bench.py --cases scale``; these tests assert delivery, counts,
links and results only.
"""
from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import wait_for

CHAIN = 60
COUNT = 20

SOURCE = """
    from dora import Node
    node = Node()
    for i in range({count}):
        node.send_output("out", str(i).encode())
    for event in node:
        if event["type"] == "STOP":
            break
"""

# Forwards (FORWARD=1) or records; at STOP it writes what it got and how many Zenoh peers
# its session has (the hub, its upstream and its downstream; a full mesh would be ~all).
RELAY = """
    import json, os, socket
    if os.environ.get("SQUAT") == "1":  # another program listens on the port the runner chose for us
        listen = json.loads(os.environ["DORA_ZENOH_NODE_CONFIG"])["listen"]
        host, port = listen.split("/", 1)[1].rsplit(":", 1)
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((host, int(port)))
        squatter.listen()
    from dora import Node
    node = Node()
    me = os.environ["DORA_NODE_ID"]
    got = []
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] == "INPUT":
            got.append(bytes(event["value"].to_numpy()).decode())
            if os.environ.get("FORWARD") == "1":
                node.send_output("out", event["value"])
            if len(got) == {count} and os.environ.get("FORWARD") != "1":
                open("sink-done", "w").write("1")
    peers = len(list(node._session.info.peers_zid()))
    json.dump({{"got": got, "peers": peers}}, open(f"out-{{me}}.json", "w"))
"""


def chain_yaml(nodes: int) -> str:
    lines = ["nodes:", "  - id: n0", "    path: source.py", "    outputs: [out]"]
    for i in range(1, nodes):
        last = i == nodes - 1
        lines += [f"  - id: n{i}", "    path: relay.py", "    inputs:",
                  f"      in: {{source: n{i - 1}/out, queue_size: 100}}"]
        if not last:
            lines += ["    outputs: [out]", "    env:", "      FORWARD: '1'"]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(300)
def test_chain_of_60_nodes_delivers_every_message_over_one_link_per_edge(flow):
    """Every edge of a 60-node chain delivers every message from the first one, in order,
    and no node links to more than its hub, upstream and downstream (gossip's full mesh
    linked every node to every other, and 100 such nodes never delivered)."""
    run_chain(flow, CHAIN)


def test_closed_chain_links_one_link_per_edge_too(flow):
    """A closed run (--secure) uses the same link plan: its runner and tools rank first and dial
    its planned nodes (wire.zconfig); it used gossip's full mesh, every node linked to every other."""
    run_chain(flow, 20, "--secure")


def run_chain(flow, nodes: int, *run_args: str, squat: str | None = None) -> None:
    """Run a chain of ``nodes`` (``squat``: a relay whose planned port another program takes);
    check every node got every message over one link per edge."""
    yaml = chain_yaml(nodes)
    if squat is not None:
        head, _, tail = yaml.partition(f"  - id: {squat}\n")  # a relay: its env has FORWARD
        yaml = head + f"  - id: {squat}\n" + tail.replace("FORWARD: '1'\n", "FORWARD: '1'\n      SQUAT: '1'\n", 1)
    flow.write("dataflow.yml", yaml)
    flow.write("source.py", SOURCE.format(count=COUNT))
    flow.write("relay.py", RELAY.format(count=COUNT))
    proc = flow.start("--quiet", *run_args)
    try:
        wait_for(lambda: (flow.folder / "sink-done").exists() or proc.poll() is not None, 240, "the sink")
        proc.send_signal(signal.SIGINT)  # Ctrl-C: STOP to every node
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "ZError" not in err and "panicked" not in err, err[-3000:]
    expected = [str(i) for i in range(COUNT)]
    for i in range(1, nodes):
        report = json.loads((flow.folder / f"out-n{i}.json").read_text())
        assert report["got"] == expected, f"n{i}"
        if f"n{i}" != squat:  # (it links to every node)
            assert 1 <= report["peers"] <= 3, f"n{i} has {report['peers']} Zenoh peers"


def test_a_node_whose_planned_port_another_program_took_links_by_itself(flow):
    """The runner holds each node's planned port, but a program binding with SO_REUSEADDR can
    still listen there first: the node's Zenoh listener cannot, and Node() raised Zenoh's
    error. It now links to the dataflow's nodes itself (its readers dial in vain), says so,
    and every message still goes through it."""
    run_chain(flow, 5, squat="n2")
    log = "".join(p.read_text() for p in flow.folder.glob("out/*/log_n2.txt"))
    assert "node 'n2': cannot listen on tcp/127.0.0.1:" in log and "(Address already in use)" in log, log
    assert "Traceback" not in log, log


def lease_config(flow) -> dict:
    """Every process of the test on a 1 s Zenoh lease, so a pause past it is short."""
    path = flow.write("zenoh.json5", '{scouting: {multicast: {enabled: false}}, '
                                     'transport: {link: {tx: {lease: 1000}}}}')
    import os

    return {**os.environ, "DORA_ZENOH_ZENOH_CONFIG": str(path)}


@pytest.mark.timeout(120)
def test_paused_runner_does_not_stop_the_dataflow(flow):
    """`run` stopped (SIGSTOP) well past the Zenoh lease: its nodes go on, and on SIGCONT
    the run ends as if nothing happened (before, nodes got STOP and the run said success)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: src
            path: src.py
            inputs:
              tick: dora/timer/millis/50
            outputs: [out]
          - id: sink
            path: sink.py
            inputs:
              in: src/out
    """)
    flow.write("src.py", """
        from dora import Node
        node = Node()
        sent = 0
        for event in node:
            if event["type"] != "INPUT":
                break
            node.send_output("out", str(sent).encode())
            sent += 1
            if sent == 1:
                open("started", "w").write("1")
            if sent == 120 or __import__("os").path.exists("resumed"):
                break
    """)
    flow.write("sink.py", """
        import json
        from dora import Node
        events = []
        for event in Node():
            events.append(event["type"])
        json.dump(events, open("sink.json", "w"))
    """)
    from conftest import start_cli

    proc = start_cli("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint,
                     cwd=flow.folder, env=lease_config(flow))
    try:
        wait_for(lambda: (flow.folder / "started").exists() or proc.poll() is not None, 60, "the source")
        proc.send_signal(signal.SIGSTOP)
        time.sleep(4)  # four leases
        proc.send_signal(signal.SIGCONT)
        (flow.folder / "resumed").write_text("1")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "succeeded" in out + err
    events = json.loads((flow.folder / "sink.json").read_text())
    assert "STOP" not in events[:-1] and events[-2:] == ["INPUT_CLOSED", "STOP"], events[-5:]
    assert "supervision lost" not in err


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("tag", "reported"), [("LOST_TAG", "lost its supervisor"),
                                               ("CLOSE_FAILED_TAG", "did not close cleanly")])
def test_node_that_lost_supervision_or_failed_to_close_fails_the_run(flow, tag, reported):
    """A node that says it stopped because it lost its supervisor, or that its Zenoh session
    did not close cleanly, fails the run although it exits 0 (before: "succeeded")."""
    from dora_zenoh.wire import stderr_tags

    flow.write("dataflow.yml", """
        nodes:
          - id: lonely
            path: lonely.py
    """)
    flow.write("lonely.py", f"""
        import sys
        print("{getattr(stderr_tags, tag)} node 'lonely': test", file=sys.stderr)
    """)
    res = flow.run()
    assert res.returncode != 0
    assert reported in res.stdout + res.stderr
