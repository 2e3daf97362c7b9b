"""Which Zenoh links a dataflow's nodes make: one per edge of the graph, plus one to the hub.

With Zenoh's gossip every peer links to every other (a full mesh: 100 nodes made
15,310 TCP connections and never delivered). Instead the runner gives every node a
listener of its own, chosen before any node starts, and each node connects to the hub
and to the listeners of the nodes it reads from; it does not auto-connect to peers it
hears of. Links then grow with the graph's edges, and data still goes straight from
writer to reader (no hop through the hub). Tools and dynamic or ROS-like nodes keep
Zenoh's gossip auto-connect: they learn every node's listener through the hub and link
to them, so they see the data as before. See docs/scale-and-logs.md.
"""
from __future__ import annotations

import socket
from contextlib import ExitStack
from typing import TYPE_CHECKING, NamedTuple

from dora_zenoh.wire.endpoint import parse as parse_endpoint

if TYPE_CHECKING:
    from dora_zenoh.descriptor import Descriptor, ResolvedNode


class Links(NamedTuple):
    """One node's place in the plan: where it listens, and the listeners of the nodes it
    dials besides the hub (``NodeConfig.listen`` / ``NodeConfig.upstreams``)."""

    listen: str
    upstreams: list[str]


class LinkPlan:
    """Every started node's listen endpoint, and whom each node connects to."""

    def __init__(self, desc: Descriptor, hub: str) -> None:
        self.hub = hub
        # Dynamic nodes are started by hand, whenever: they listen where they like and
        # auto-connect (gossip) to the nodes they need, so nobody dials them.
        planned = [n for n in desc.nodes if n.kind != "dynamic"]
        host = _host_of(hub)
        self.listen: dict[str, str] = {}
        self._held = ExitStack()
        if host is not None:
            for node, port in zip(planned, _reserve_ports(self._held, host, len(planned)), strict=True):
                self.listen[node.id] = _endpoint(host, port)
        self._sources = {n.id: _sources_of(n) for n in desc.nodes}

    def release(self) -> None:
        """Let the planned ports go (the run is over: no node listens on them any more)."""
        self._held.close()

    @property
    def enabled(self) -> bool:
        """False when the hub is not TCP on an address (e.g. a Unix socket): nodes then use gossip."""
        return bool(self.listen)

    def links(self, node_id: str) -> Links | None:
        """What node ``node_id`` listens on and dials besides the hub (None: keep Zenoh's gossip)."""
        if not self.enabled or node_id not in self.listen:
            return None
        upstream = [self.listen[s] for s in sorted(self._sources.get(node_id, ())) if self._dials(node_id, s)]
        return Links(self.listen[node_id], upstream)

    def _dials(self, node_id: str, source: str) -> bool:
        """Whether ``node_id`` connects to ``source``. When both read each other (a ping-pong),
        only the greater id dials: one TCP link serves both directions, and two would both
        stay open (measured: 4 sockets instead of 2 for such a pair)."""
        if source not in self.listen:
            return False
        mutual = node_id in self._sources.get(source, ())
        return not mutual or node_id > source

    def connections(self) -> int:
        """How many links the plan makes between nodes (not counting the hub's)."""
        return sum(1 for n, srcs in self._sources.items() if n in self.listen for s in srcs if self._dials(n, s))


def _sources_of(node: ResolvedNode) -> set[str]:
    """The other nodes ``node`` reads from (operators' inputs included; timers are not nodes)."""
    return {i.source_node for i in node.inputs.values()
            if i.source_node and not i.is_timer and i.source_node != node.id}


def _host_of(hub: str) -> str | None:
    where = parse_endpoint(hub)
    return where.netloc if where.proto == "tcp" and where.port is not None else None


def _endpoint(host: str, port: int) -> str:
    return f"tcp/{host}:{port}"


def _reserve_ports(held: ExitStack, host: str, count: int) -> list[int]:
    """``count`` distinct ports on ``host``, each held by a bound socket (with SO_REUSEADDR, never
    listening) that ``held`` closes. Zenoh's listener (SO_REUSEADDR too) may bind a held port, and
    nothing else may: neither another process's bind (a port picked by ``bind(0)``, as every
    runner picks its nodes' ports) nor an outgoing connection's. A planned port that was only
    probed and let go could be taken before its node listened, which then failed in ``Node()``
    with "Address already in use" (docs/scale-and-logs.md); a restarted node met the same race."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    ports = []
    for _ in range(count):
        s = held.enter_context(socket.socket(family, socket.SOCK_STREAM))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((bare, 0))
        ports.append(s.getsockname()[1])
    return ports
