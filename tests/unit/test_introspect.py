"""Rate statistics and graph building/rendering (no network)."""
from __future__ import annotations

from pathlib import Path

from dora_zenoh.descriptor import load_descriptor
from dora_zenoh.introspect import graph as graphs
from dora_zenoh.introspect.rate import Meter, fmt_bw_line, fmt_rate_line

ROOT = Path(__file__).resolve().parents[2]


def test_rate_counts_sent_messages_from_sequence_numbers():
    m = Meter(window=100)
    for i, seq in enumerate([0, 1, 2, 10, 11]):  # the watcher missed 3..9
        m.add(i * 0.1, 100, seq)
    r = m.report(0.5)
    assert abs(r.rate - 27.5) < 1e-6  # 11 messages after the first, in 0.4 s
    assert r.missed == 7 and r.seen == 5
    assert abs(r.period_mean - 0.1) < 1e-9  # periods only between consecutive sequence numbers
    assert r.mean_size == 100 and abs(r.bytes_per_s - 2750) < 1e-6
    assert "average rate: 27.500" in fmt_rate_line(r) and "7 not seen" in fmt_rate_line(r)
    assert fmt_bw_line(r).startswith("2.75 KB/s from 12 messages")


def test_a_window_of_messages_as_ros2_topic_hz_takes_it():
    """`topic hz -w 5` is the last 5 messages (ros2's meaning), `-w 5s` the last 5 seconds."""
    from dora_zenoh.cli.topic import Window, _meter

    assert Window().convert("5", None, None) == 5 and Window().convert("5s", None, None) == 5.0
    by_count, by_time = _meter(5), _meter(5.0)
    for i in range(100):  # one a second
        by_count.add(float(i), 10, i)
        by_time.add(float(i), 10, i)
    assert by_count.report(99.0).seen == 5 and by_time.report(99.0).seen == 6  # 94..99: 5 s back


def test_rate_without_sequence_numbers_and_window():
    m = Meter(window=1.0)
    for i in range(30):
        m.add(i * 0.1, 10, None)
    r = m.report(2.9)
    assert r.seen == 11 and abs(r.rate - 10) < 1e-6 and r.missed == 0
    assert Meter().report(0.0) is None


def test_graph_of_an_operator_dataflow():
    g = graphs.from_descriptor(load_descriptor(ROOT / "examples/python-operator/dataflow.yml"))
    kinds = {v.id: v.kind for v in g.vertices.values()}
    assert kinds == {"counter/op": "operator", "printer": "node", "timer:50000000": "timer"}
    edges = {(e.src, e.dst, e.output, e.input) for e in g.edges}
    assert ("counter/op", "printer", "counter", "counter") in edges
    mermaid = graphs.to_mermaid(g)
    assert mermaid.startswith("flowchart LR") and '[["counter/op"]]' in mermaid and '(["timer 50 ms"])' in mermaid
    dot = graphs.to_dot(g)
    assert '"counter/op" -> "printer" [label="counter [10]"];' in dot


def test_html_is_self_contained_and_survives_cycles():
    g = graphs.Graph("loop")
    for v in ("a", "b", "c"):
        g.vertices[v] = graphs.Vertex(v, v, "node")
    g.edges += [graphs.Edge("a", "b", "x", "x", 10, "drop_oldest"), graphs.Edge("b", "c", "y", "y", 1, "block"),
                graphs.Edge("c", "a", "z", "back", 10, "drop_oldest"), graphs.Edge("c", "c", "s", "self")]
    pos = graphs.layout(g)
    assert pos["a"][0] < pos["b"][0] < pos["c"][0]
    page = graphs.to_html(g)
    assert "<script" not in page and "https://" not in page and "<link" not in page
    assert page.count('class="edge"') == 4 and "y → y" not in page and "y [1, block]" in page
    assert "z → back [10]" in page


PLACED = """
nodes:
  - id: camera
    path: camera.py
    deploy: {machine: robot}
    inputs: {tick: dora/timer/millis/33}
    outputs: [image]
  - id: detector
    path: detector.py
    _unstable_deploy: {machine: offboard}
    inputs: {image: camera/image}
    outputs: [boxes]
  - id: motors
    path: motors.py
    deploy: {machine: robot}
    inputs:
      boxes: {source: detector/boxes, queue_policy: block}
  - id: logger
    path: logger.py
    inputs: {boxes: detector/boxes}
"""


def test_a_graph_placed_on_several_machines_groups_them(tmp_path):
    """`graph` of a YAML with `deploy:` showed no machine: each renderer now groups the nodes by
    machine (those without `deploy` on the coordinator's) and marks the edges between machines."""
    for f in ("camera.py", "detector.py", "motors.py", "logger.py"):
        (tmp_path / f).write_text("")
    (tmp_path / "flow.yml").write_text(PLACED)
    g = graphs.from_descriptor(load_descriptor(tmp_path / "flow.yml"))
    assert g.machines() == [graphs.HERE, "offboard", "robot"]
    assert [e.dst for e in g.edges if g.crosses(e)] == ["detector", "motors", "logger"]
    mermaid = graphs.to_mermaid(g)
    robot = mermaid.split('subgraph m2["machine robot"]')[1].split("end")[0]
    assert '"camera"' in robot and '"motors"' in robot and '"detector"' not in robot
    assert '-.->|"image [10]"|' in mermaid and '==>|"boxes [10, block]"|' in mermaid
    assert '(["timer 33 ms"])' in mermaid.split("subgraph")[0]  # a timer ticks where its readers are
    dot = graphs.to_dot(g)
    assert 'subgraph "cluster_1" {\n    label="machine offboard"; style=dashed;\n    "detector"' in dot
    assert '"detector" -> "motors" [label="boxes [10, block]", style="bold,dashed"];' in dot
    assert [e["crosses_machines"] for e in g.as_dict()["edges"]] == [False, True, True, True]
    page = graphs.to_html(g)
    assert page.count('class="edge crosses"') == 3 and 'data-machine="offboard"' in page
    assert "<td>detector (offboard)</td>" in page
    one = graphs.from_descriptor(load_descriptor(ROOT / "examples/python-operator/dataflow.yml"))
    assert one.machines() == [] and "subgraph" not in graphs.to_mermaid(one)  # one machine: as before
    assert "cluster" not in graphs.to_dot(one) and "data-machine" not in graphs.to_html(one)
