"""A dataflow as a graph, and its renderings: Mermaid, Graphviz dot, and a self-contained HTML page.

The graph comes from a YAML (every node, operator and timer, as declared) or from a
running dataflow (what its nodes report). The HTML is an inline SVG laid out here
(layers by longest path from the sources, back edges of cycles drawn as they are), so
it works offline, with no CDN and no JavaScript library.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Vertex:
    id: str
    label: str
    kind: str  # "node", "operator", "timer", "dynamic"
    machine: str | None = None  # where `deploy:` places it ("labels k=v" until a start chooses); None: here


@dataclass
class Edge:
    src: str
    dst: str
    output: str
    input: str
    queue_size: int | None = None
    policy: str | None = None

    @property
    def label(self) -> str:
        out = f"{self.output} → {self.input}" if self.output != self.input else self.output
        if self.queue_size is not None:
            out += f" [{self.queue_size}{', block' if self.policy == 'block' else ''}]"
        return out


@dataclass
class Graph:
    name: str
    vertices: dict[str, Vertex] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "vertices": [vars(v) for v in self.vertices.values()],
                "edges": [{**vars(e), "label": e.label, "crosses_machines": self.crosses(e)} for e in self.edges]}

    def machines(self) -> list[str]:
        """The machines of a dataflow placed on several (nodes without one: "here"), else []."""
        placed = {v.machine for v in self.vertices.values() if v.kind != "timer"}
        if placed == {None}:
            return []
        return sorted(m or HERE for m in placed)

    def machine_of(self, vid: str) -> str | None:
        v = self.vertices.get(vid)
        if v is None or v.kind == "timer" or not self.machines():
            return None  # (a timer ticks in each of its readers: on their machines)
        return v.machine or HERE

    def crosses(self, e: Edge) -> bool:
        """The edge's messages go from one machine to another."""
        a, b = self.machine_of(e.src), self.machine_of(e.dst)
        return a is not None and b is not None and a != b


HERE = "(coordinator's machine)"  # a node without `deploy` in a dataflow placed on several machines


def _timer_label(ns: int) -> str:
    if ns % 1_000_000_000 == 0:
        return f"timer {ns // 1_000_000_000} s"
    if ns % 1_000_000 == 0:
        return f"timer {ns // 1_000_000} ms"
    return f"timer {ns / 1000:g} µs"


def _add_input(g: Graph, dst: str, in_id: str, source: str | None, timer_ns: int | None,
               queue_size: int | None, policy: str | None) -> None:
    if timer_ns is not None:
        tid = f"timer:{timer_ns}"
        g.vertices.setdefault(tid, Vertex(tid, _timer_label(timer_ns), "timer"))
        g.edges.append(Edge(tid, dst, "tick", in_id, queue_size, policy))
        return
    if not source:
        return
    src, _, output = source.rpartition("/")
    if src not in g.vertices:  # "node/out" of a node, or "node/op/out" of an operator
        g.vertices.setdefault(src, Vertex(src, src, "node"))
    g.edges.append(Edge(src, dst, output, in_id, queue_size, policy))


def from_descriptor(desc: Any) -> Graph:
    """Every node, operator and timer of a valid descriptor, edges labelled output → input [queue]."""
    g = Graph(desc.name or desc.path.stem)
    for node in desc.nodes:
        where = node.machine or (("labels " + ",".join(f"{k}={v}" for k, v in sorted(node.labels.items())))
                                 if node.labels else None)
        if node.operators:
            for op in node.operators:
                vid = f"{node.id}/{op.id}"
                g.vertices[vid] = Vertex(vid, vid, "operator", where)
        else:
            g.vertices[node.id] = Vertex(node.id, node.id, "dynamic" if node.kind == "dynamic" else "node", where)
    for node in desc.nodes:
        if node.operators:
            for op in node.operators:
                for in_id, inp in op.inputs.items():
                    _add_input(g, f"{node.id}/{op.id}", in_id, inp.source, inp.timer_ns, inp.queue_size,
                               inp.queue_policy)
        else:
            for in_id, inp in node.inputs.items():
                _add_input(g, node.id, in_id, inp.source, inp.timer_ns, inp.queue_size, inp.queue_policy)
    return g


def from_snapshot(snap: Any, dataflow: str, machines: dict[str, str | None] | None = None) -> Graph:
    """A running dataflow as its nodes report it (operators appear inside their runtime node);
    ``machines``: each node's machine id (the coordinator's; None: its own machine), else (a node
    it does not name: a daemon answers for its machine's nodes only) where each node says it runs."""
    g = Graph(dataflow)
    nodes = [n for (df, _), n in sorted(snap.nodes.items()) if df == dataflow]
    for n in nodes:
        g.vertices[n.id] = Vertex(n.id, n.id, "node", (machines or {}).get(n.id, n.machine))
    for n in nodes:
        for in_id, inp in n.inputs.items():
            source = inp.source
            if source and source.count("/") == 2:  # an operator's output: draw it from its node
                first, _, rest = source.partition("/")
                source = f"{first}/{rest.replace('/', '.')}"
            _add_input(g, n.id, in_id, source, inp.timer_ns, inp.queue_size, inp.policy)
    return g


# -- text renderings ----------------------------------------------------------------------------

def _mid(vid: str, order: dict[str, int]) -> str:
    return f"v{order[vid]}"


def to_mermaid(g: Graph) -> str:
    """Placed on several machines: one subgraph per machine; edges between machines dotted."""
    order = {v: i for i, v in enumerate(g.vertices)}
    lines = ["flowchart LR"]

    def vertex(v: Vertex, indent: str) -> str:
        text = v.label.replace('"', "'")
        shape = {"timer": f'(["{text}"])', "operator": f'[["{text}"]]', "dynamic": f'[/"{text}"/]'}
        return f"{indent}{_mid(v.id, order)}{shape.get(v.kind, f'[{chr(34)}{text}{chr(34)}]')}"

    machines = g.machines()
    lines += [vertex(v, "  ") for v in g.vertices.values() if g.machine_of(v.id) is None]
    for i, m in enumerate(machines):
        lines.append(f'  subgraph m{i}["machine {m.replace(chr(34), chr(39))}"]')
        lines += [vertex(v, "    ") for v in g.vertices.values() if g.machine_of(v.id) == m]
        lines.append("  end")
    for e in g.edges:
        label = e.label.replace('"', "'").replace("|", "/")
        arrow = "==>" if e.policy == "block" else "-.->" if g.crosses(e) else "-->"
        lines.append(f'  {_mid(e.src, order)} {arrow}|"{label}"| {_mid(e.dst, order)}')
    return "\n".join(lines) + "\n"


def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: Graph) -> str:
    lines = [f"digraph {_dq(g.name)} {{", "  rankdir=LR;", '  node [fontname="sans-serif"];',
             '  edge [fontname="sans-serif", fontsize=10];']
    shapes = {"timer": "ellipse", "operator": "component", "dynamic": "parallelogram", "node": "box"}

    def vertex(v: Vertex, indent: str) -> str:
        return f"{indent}{_dq(v.id)} [label={_dq(v.label)}, shape={shapes.get(v.kind, 'box')}];"

    lines += [vertex(v, "  ") for v in g.vertices.values() if g.machine_of(v.id) is None]
    for i, m in enumerate(g.machines()):  # (a "cluster" subgraph: Graphviz draws a box around it)
        lines += [f"  subgraph {_dq(f'cluster_{i}')} {{", f"    label={_dq(f'machine {m}')}; style=dashed;"]
        lines += [vertex(v, "    ") for v in g.vertices.values() if g.machine_of(v.id) == m]
        lines.append("  }")
    for e in g.edges:
        styles = [s for s, on in (("bold", e.policy == "block"), ("dashed", g.crosses(e))) if on]
        style = f", style={_dq(','.join(styles))}" if styles else ""
        lines.append(f"  {_dq(e.src)} -> {_dq(e.dst)} [label={_dq(e.label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- layout and HTML ------------------------------------------------------------------------------

def layout(g: Graph) -> dict[str, tuple[int, int]]:
    """Layer of each vertex (longest path from a source, cycles broken by DFS) and its row in it."""
    succ: dict[str, list[str]] = {v: [] for v in g.vertices}
    for e in g.edges:
        if e.src in succ and e.dst in succ and e.src != e.dst:
            succ[e.src].append(e.dst)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}

    def dfs(v: str) -> None:  # iterative would be safer for huge graphs; dataflows are small
        state[v] = 1
        for w in succ[v]:
            if state.get(w) == 1:
                back.add((v, w))
            elif w not in state:
                dfs(w)
        state[v] = 2

    indeg = {v: 0 for v in g.vertices}
    for ws in succ.values():
        for w in ws:
            indeg[w] += 1
    for v in sorted(g.vertices, key=lambda x: (indeg[x] != 0, x)):
        if v not in state:
            dfs(v)
    layer = {v: 0 for v in g.vertices}
    for _ in range(len(g.vertices)):
        changed = False
        for v, ws in succ.items():
            for w in ws:
                if (v, w) not in back and layer[w] < layer[v] + 1:
                    layer[w] = layer[v] + 1
                    changed = True
        if not changed:
            break
    # A source (a timer, most often) sits just before its first reader, not in the first column:
    # its edge then is short instead of crossing the boxes in between.
    for v in g.vertices:
        if indeg[v] == 0 and succ[v]:
            layer[v] = max(0, min(layer[w] for w in succ[v]) - 1)
    rows: dict[int, int] = {}
    pos = {}
    for v in g.vertices:
        pos[v] = (layer[v], rows.get(layer[v], 0))
        rows[layer[v]] = rows.get(layer[v], 0) + 1
    return pos


BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 170, 44, 120, 46, 30
COLORS = {"node": "#dbeafe", "operator": "#dcfce7", "timer": "#fef3c7", "dynamic": "#f3e8ff"}
# A dataflow on several machines: each machine's boxes get its colour of outline and a second line
MACHINE_COLORS = ["#b45309", "#0f766e", "#7c3aed", "#be123c", "#1d4ed8", "#4d7c0f"]


def machine_colors(g: Graph) -> dict[str, str]:
    return {m: MACHINE_COLORS[i % len(MACHINE_COLORS)] for i, m in enumerate(g.machines())}


def to_svg(g: Graph) -> str:
    pos = layout(g)
    cols = max((c for c, _ in pos.values()), default=0) + 1
    rows = max((r for _, r in pos.values()), default=0) + 1
    width = MARGIN * 2 + cols * BOX_W + (cols - 1) * GAP_X
    height = MARGIN * 2 + rows * BOX_H + (rows - 1) * GAP_Y + 20

    def xy(v: str) -> tuple[int, int]:
        c, r = pos[v]
        return MARGIN + c * (BOX_W + GAP_X), MARGIN + r * (BOX_H + GAP_Y)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" font-family="sans-serif" '
           'font-size="13">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#334155"/></marker></defs>']
    parallel: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(g.edges):
        parallel.setdefault((e.src, e.dst), []).append(i)
    for i, e in enumerate(g.edges):
        if e.src not in pos or e.dst not in pos:
            continue
        (x1, y1), (x2, y2) = xy(e.src), xy(e.dst)
        group = parallel[(e.src, e.dst)]  # edges between the same two vertices fan out, labels stacked
        off = (group.index(i) - (len(group) - 1) / 2) * 16
        sx: float
        sy: float
        ex: float
        ey: float
        lx: float
        ly: float
        if e.src == e.dst:
            d = (f"M{x1 + BOX_W - 20},{y1} C{x1 + BOX_W + 30},{y1 - 50} {x1 + BOX_W + 30},{y1 + BOX_H + 50} "
                 f"{x1 + BOX_W - 20},{y1 + BOX_H}")
            lx, ly = x1 + BOX_W + 34, y1 + BOX_H / 2
        elif x2 > x1:
            sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2 + off / 2, x2, y2 + BOX_H / 2 + off / 2
            d = f"M{sx},{sy} C{sx + GAP_X / 2},{sy + off} {ex - GAP_X / 2},{ey + off} {ex},{ey}"
            lx, ly = (sx + ex) / 2, (sy + ey) / 2 + off * 0.75 - 4
        else:  # a back edge (cycle) or same layer: loop under the boxes
            sx, sy, ex, ey = x1 + BOX_W / 2, y1 + BOX_H, x2 + BOX_W / 2, y2 + BOX_H
            low = max(sy, ey) + GAP_Y * 0.8
            d = f"M{sx},{sy} C{sx},{low} {ex},{low} {ex},{ey}"
            lx, ly = (sx + ex) / 2, low - 4
        crosses = g.crosses(e)
        dash = ("" if e.policy != "block" else ' stroke-width="2.5"') + (' stroke-dasharray="7 4"' if crosses else "")
        out.append(f'<g class="edge{" crosses" if crosses else ""}" data-src="{html.escape(e.src)}" '
                   f'data-dst="{html.escape(e.dst)}">'
                   f'<path id="e{i}" d="{d}" fill="none" stroke="#334155"{dash} marker-end="url(#arrow)"/>'
                   f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle" font-size="11" fill="#0f172a" '
                   f'paint-order="stroke" stroke="#ffffff" stroke-width="3">{html.escape(e.label)}</text></g>')
    colors = machine_colors(g)
    for v in g.vertices.values():
        x, y = xy(v.id)
        rx = 22 if v.kind == "timer" else 6
        machine = g.machine_of(v.id)
        stroke = f'stroke="{colors[machine]}" stroke-width="2.5"' if machine else 'stroke="#1e293b"'
        where = (f'<text class="machine" x="{x + BOX_W / 2:.0f}" y="{y + BOX_H - 8:.0f}" text-anchor="middle" '
                 f'font-size="10" fill="{colors[machine]}">on {html.escape(machine)}</text>') if machine else ""
        out.append(f'<g class="vertex {v.kind}" data-id="{html.escape(v.id)}"'
                   + (f' data-machine="{html.escape(machine)}"' if machine else "") + ">"
                   f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="{rx}" '
                   f'fill="{COLORS.get(v.kind, "#e5e7eb")}" {stroke}/>'
                   f'<text x="{x + BOX_W / 2:.0f}" y="{y + (18 if machine else BOX_H / 2 + 5):.0f}" '
                   f'text-anchor="middle">{html.escape(v.label)}</text>{where}'
                   f'<title>{html.escape(v.kind)} {html.escape(v.id)}'
                   f'{" on machine " + html.escape(machine) if machine else ""}</title></g>')
    out.append("</svg>")
    return "\n".join(out)


def to_html(g: Graph) -> str:
    """One file, no network: the SVG, a legend, and the edges as a table for screen readers and grep."""
    def name(v: str) -> str:
        machine = g.machine_of(v)
        return html.escape((g.vertices[v].label if v in g.vertices else v) + (f" ({machine})" if machine else ""))

    rows = "\n".join(f"<tr><td>{name(e.src)}</td><td>{html.escape(e.output)}</td>"
                     f"<td>{name(e.dst)}</td><td>{html.escape(e.input)}</td>"
                     f"<td>{e.queue_size if e.queue_size is not None else ''}</td>"
                     f"<td>{html.escape(e.policy or '')}</td></tr>" for e in g.edges)
    legend = " ".join(f'<span style="background:{c};border:1px solid #1e293b;padding:1px 6px;'
                      f'border-radius:4px">{k}</span>' for k, c in COLORS.items())
    machines = machine_colors(g)
    if machines:
        legend += " &nbsp; machines: " + " ".join(
            f'<span class="machine" style="border:2.5px solid {c};padding:1px 6px;border-radius:4px">'
            f'{html.escape(m)}</span>' for m, c in machines.items()) + " &nbsp; dashed edge: between machines"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dataflow {html.escape(g.name)}</title>
<style>body{{font-family:sans-serif;margin:16px;color:#0f172a;background:#fff}}
table{{border-collapse:collapse;margin-top:12px;font-size:13px}}td,th{{border:1px solid #cbd5e1;padding:2px 8px}}
.vertex:hover rect{{stroke-width:3}}</style></head>
<body><h1 style="font-size:18px">dataflow {html.escape(g.name)}</h1>
<p style="font-size:13px">{legend} &nbsp; edge label: output → input [queue size, block]</p>
<div id="graph">{to_svg(g)}</div>
<table id="edges"><tr><th>from</th><th>output</th><th>to</th><th>input</th><th>queue</th><th>policy</th></tr>
{rows}</table></body></html>
"""


RENDERERS = {"mermaid": to_mermaid, "dot": to_dot, "html": to_html}
