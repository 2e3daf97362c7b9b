"""What runs on the network: dataflows, nodes, outputs and inputs, asked of the nodes themselves.

Every node declares a liveliness token ``{prefix}/@dz/live/{dataflow}/node/{id}`` and
answers a stats queryable ``{prefix}/@dz/stats/{dataflow}/{id}`` with its outputs
(messages sent), its inputs (source, policy, received, dropped, queued) and its pid.
That is all a watcher needs, whoever started the dataflow (``run`` or the
coordinator), whatever its prefix: no descriptor, no coordinator, and no cost to the
dataflow until somebody asks.

The observer is a Zenoh *peer* on the hub's endpoint, listening on a free loopback
port of its own: gossip gives it direct links to the publishers, so watched data does
not pass through the runner or the coordinator.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zenoh

from dora_zenoh.errors import DoraZenohError
from dora_zenoh.wire import keys, zconfig
from dora_zenoh.wire.endpoint import parse as parse_endpoint

ANY_PREFIX_LIVE = f"**/{keys.INTERNAL}/live/**"
ANY_PREFIX_STATS = f"**/{keys.INTERNAL}/stats/**"
EMPTY_GRACE = 4.0  # seconds an empty network is asked again before "nothing runs" is believed


class IntrospectError(DoraZenohError):
    """Nothing to watch, or a name that matches nothing (the message says what exists)."""


def open_observer(endpoint: str | None = None, timeout: float = 3.0) -> zenoh.Session:
    """A peer session linked to the hub on ``endpoint`` (or an IntrospectError saying nothing runs)."""
    hub = endpoint or zconfig.default_endpoint()
    ep = parse_endpoint(hub)
    if ep.proto == "tcp" and not zconfig.tcp_port_in_use(hub):
        raise IntrospectError(f"nothing is running on {hub}: start a dataflow with `dora-zenoh run FILE` "
                              "or a coordinator with `dora-zenoh up` (or pass --endpoint / set "
                              "DORA_ZENOH_ENDPOINT)")
    host = ep.netloc if ep.proto == "tcp" else "127.0.0.1"
    session = zenoh.open(zconfig.peer_config([hub], [zconfig.free_tcp_endpoint(host)]))
    if not zconfig.wait_for_peers(session, timeout):
        session.close()
        raise IntrospectError(f"could not link to {hub} within {timeout:g} s")
    return session


def _hub_client(hub: str) -> zenoh.Session:
    """A Zenoh client of the hub: discovery queries are answered by the hub from the
    declarations it already has (see ``Observer``)."""
    conf = zconfig.peer_config([hub], [])
    conf.insert_json5("mode", '"client"')
    return zenoh.open(conf)


def hub_dataflows(endpoint: str | None = None, timeout: float = 1.0) -> set[str]:
    """The dataflows whose runners are on the hub's network (open ones: a closed dataflow's
    runner is on a network of its own), asked of the hub by a short-lived client."""
    try:
        session = _hub_client(endpoint or zconfig.default_endpoint())
    except zenoh.ZError:
        return set()
    try:
        names = set()
        for reply in session.liveliness().get(ANY_PREFIX_LIVE, timeout=timeout):
            if reply.ok is not None:
                _, parts = _split(str(reply.ok.key_expr), "live")
                if len(parts) == 2 and parts[1] == "runner":
                    names.add(parts[0])
        return names
    finally:
        session.close()


class Observer:
    """The two sessions a watching tool uses (a context manager that closes both).

    ``client``: a Zenoh client of the hub, for the discovery queries (tokens, stats, the
    supervisor's ``list``): the hub answers them from the declarations it already has, at
    once, where a brand-new peer first has to learn the nodes' declarations by gossip
    (measured: a peer's first query missed a live node now and then). ``peer``: for the data
    itself (subscribers, ``pub``), linked straight to the publishers, so watched messages do
    not pass through the hub.
    """

    def __init__(self, endpoint: str | None = None, timeout: float = 3.0) -> None:
        self.peer = open_observer(endpoint, timeout)
        hub = endpoint or zconfig.default_endpoint()
        try:
            self.client = _hub_client(hub)
        except zenoh.ZError:
            self.peer.close()
            raise IntrospectError(f"could not connect to {hub}") from None
        deadline = time.monotonic() + timeout
        while not (list(self.client.info.peers_zid()) or list(self.client.info.routers_zid())):
            if time.monotonic() > deadline:
                self.close()
                raise IntrospectError(f"could not link to {hub} within {timeout:g} s")
            time.sleep(0.005)

    def close(self) -> None:
        for session in (self.client if hasattr(self, "client") else None, self.peer):
            if session is not None:
                session.close()

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class InputInfo:
    id: str
    source: str | None          # "node/output", None for a timer
    timer_ns: int | None
    queue_size: int
    policy: str
    received: int = 0
    dropped: int = 0
    queued: int = 0


@dataclass
class NodeInfo:
    dataflow: str
    prefix: str
    id: str
    alive: bool = True
    exited: bool = False
    pid: int | None = None
    machine: str | None = None  # its machine id (deploy), else its host name
    sent: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, InputInfo] = field(default_factory=dict)
    host: str | None = None  # its host name (None: a node of an older dora-zenoh; see machine)

    def as_dict(self) -> dict[str, Any]:
        return {"dataflow": self.dataflow, "prefix": self.prefix, "id": self.id, "alive": self.alive,
                "exited": self.exited, "pid": self.pid, "machine": self.machine, "sent": self.sent,
                "inputs": {k: vars(v) for k, v in self.inputs.items()}}


@dataclass
class Topic:
    """One output: ``{prefix}/{dataflow}/{node}/{output}``."""

    dataflow: str
    prefix: str
    node: str
    output: str
    sent: int = 0
    subscribers: list[tuple[str, InputInfo]] = field(default_factory=list)  # (node id, its input)

    @property
    def name(self) -> str:
        return f"{self.node}/{self.output}"

    @property
    def key(self) -> str:
        return keys.data_key(self.prefix, self.dataflow, self.name)


@dataclass
class Snapshot:
    """The state of every dataflow on the network at one moment."""

    nodes: dict[tuple[str, str], NodeInfo] = field(default_factory=dict)   # (dataflow, node id)
    runners: set[str] = field(default_factory=set)
    stopping: set[str] = field(default_factory=set)

    def dataflows(self) -> list[str]:
        return sorted({d for d, _ in self.nodes} | self.runners)

    def topics(self, dataflow: str | None = None) -> list[Topic]:
        found: dict[tuple[str, str], Topic] = {}
        for (df, _), node in sorted(self.nodes.items()):
            if dataflow and df != dataflow:
                continue
            for out, count in node.sent.items():
                found[(df, f"{node.id}/{out}")] = Topic(df, node.prefix, node.id, out, count)
        for (df, _), node in sorted(self.nodes.items()):
            if dataflow and df != dataflow:
                continue
            for inp in node.inputs.values():
                topic = found.get((df, inp.source or ""))
                if topic is not None:
                    topic.subscribers.append((node.id, inp))
        return list(found.values())


def _split(key: str, marker: str) -> tuple[str, list[str]]:
    """``a/b/@dz/live/df/node/x`` -> (``a/b``, [df, node, x])."""
    head, _, tail = key.partition(f"/{keys.INTERNAL}/{marker}/")
    return head, tail.split("/")


def snapshot(session: zenoh.Session, dataflow: str | None = None, timeout: float = 3.0) -> Snapshot:
    """Ask the liveliness tokens and the nodes' stats queryables (two bounded queries)."""
    snap = Snapshot()
    for reply in session.liveliness().get(ANY_PREFIX_LIVE, timeout=timeout):
        if reply.ok is None:
            continue
        prefix, parts = _split(str(reply.ok.key_expr), "live")
        if not parts or (dataflow and parts[0] != dataflow):
            continue
        df = parts[0]
        if len(parts) == 3 and parts[1] in ("node", "exited"):
            node = snap.nodes.setdefault((df, parts[2]), NodeInfo(df, prefix, parts[2], alive=False))
            if parts[1] == "node":
                node.alive = True
            else:
                node.exited = True
        elif len(parts) == 2 and parts[1] == "runner":
            snap.runners.add(df)
        elif len(parts) == 2 and parts[1] == "stop":
            snap.stopping.add(df)
    # every node must answer, not only the "best matching" one: target ALL
    for reply in session.get(ANY_PREFIX_STATS, timeout=timeout, target=zenoh.QueryTarget.ALL):
        if reply.ok is None:
            continue
        prefix, parts = _split(str(reply.ok.key_expr), "stats")
        if len(parts) != 2 or (dataflow and parts[0] != dataflow):
            continue
        try:
            stats = json.loads(reply.ok.payload.to_bytes())
        except ValueError:
            continue
        node = snap.nodes.setdefault((parts[0], parts[1]), NodeInfo(parts[0], prefix, parts[1]))
        node.prefix = prefix
        node.sent = {str(k): int(v) for k, v in (stats.get("sent", stats) or {}).items()
                     if isinstance(v, int)}
        node.pid = stats.get("pid")
        node.machine = stats.get("machine")
        node.host = stats.get("host", node.machine)
        for in_id, spec in (stats.get("inputs") or {}).items():
            node.inputs[in_id] = InputInfo(
                id=in_id, source=spec.get("source"), timer_ns=spec.get("timer_ns"),
                queue_size=spec.get("queue_size", 0), policy=spec.get("policy", "?"),
                received=spec.get("received", 0), dropped=spec.get("dropped", 0),
                queued=spec.get("queued", 0))
    return snap


def _complete(snap: Snapshot, skip: frozenset[tuple[str, str]] = frozenset()) -> bool:
    """Every node that is alive (token) has answered its stats (pid), and there is one at least;
    ``skip``: (dataflow, node) not waited for (its machine is unreachable)."""
    return bool(snap.nodes) and all(n.pid is not None for k, n in snap.nodes.items() if n.alive and k not in skip)


UNREACHABLE_WAIT = 0.5  # seconds each query waits when some nodes are known unreachable (see wait_snapshot)
FIRST_WAIT = 1.0  # seconds each query of wait_snapshot's first two tries waits (later ones: 3 s)


def wait_snapshot(session: zenoh.Session, dataflow: str | None = None, timeout: float = 10.0,
                  skip: Callable[[], frozenset[tuple[str, str]]] | None = None) -> Snapshot:
    """A snapshot in which every live node has answered, retried while the links to the nodes
    are still being made (a new peer learns of them by gossip) or a loaded node answers late;
    after ``timeout``, the most complete one seen. ``skip()``, asked before each try: (dataflow,
    node) of machines the coordinator hears nothing from (a partition): not waited for, and each
    query then waits only UNREACHABLE_WAIT (their nodes' tokens outlive the partition's start by
    Zenoh's 10 s lease, and a query waits for every node it was routed to)."""
    start = time.monotonic()
    deadline = start + timeout
    best: Snapshot | None = None
    tries = 0
    while True:
        gone = skip() if skip is not None else frozenset()
        # the first two tries wait FIRST_WAIT for a node that does not answer (replies come in ms; a
        # partition just begun, not known to the coordinator yet, would hold each 3 s, and by the
        # third the coordinator has heard nothing from that machine for STALE_REPORT: skipped)
        wait = UNREACHABLE_WAIT if gone else (FIRST_WAIT if tries < 2 and skip is not None else 3.0)
        tries += 1
        snap = snapshot(session, dataflow, timeout=wait)
        if _complete(snap, gone):
            return snap
        # Nothing at all: nothing runs, or the hub has not yet told this new session of the
        # tokens it knows (it does so just after the link is made): ask again for a moment.
        if not (snap.nodes or snap.runners) and time.monotonic() - start > EMPTY_GRACE:
            return snap
        if best is None or sum(n.pid is not None for n in snap.nodes.values()) >= \
                sum(n.pid is not None for n in best.nodes.values()):
            best = snap
        if time.monotonic() > deadline:
            return best
        time.sleep(0.2)


def resolve(snap: Snapshot, name: str, dataflow: str | None = None) -> Topic:
    """``NODE/OUTPUT`` (in ``dataflow``, or the one dataflow that has it), ``DATAFLOW/NODE/OUTPUT``
    (the key without its prefix) or a full key -> its Topic.

    A key that names no running output still resolves (a plain Zenoh publisher's key):
    the caller then watches the key as given.
    """
    topics = snap.topics(dataflow)
    exact = [t for t in topics if t.key == name]
    if exact:
        return exact[0]
    matches = [t for t in topics if t.name == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise IntrospectError(f"'{name}' is an output of several dataflows ("
                              + ", ".join(sorted(t.dataflow for t in matches)) + "): pick one with -d DATAFLOW")
    # `topic hz robot/camera/image`: taken for a key (of no one), it said only "no messages"
    named = [t for t in topics if f"{t.dataflow}/{t.name}" == name]
    if len(named) == 1:
        return named[0]
    if name.count("/") >= 2:  # a key: watch it even if no dora node publishes it
        return _foreign(name)
    known = ", ".join(t.name for t in topics) or "none"
    scope = f"dataflow '{dataflow}'" if dataflow else "any running dataflow"
    raise IntrospectError(f"no output '{name}' in {scope} (outputs: {known}); give NODE/OUTPUT or a full key")


class _ForeignTopic(Topic):
    """A key no dora node announced (another prefix, a plain Zenoh publisher): watched as is."""

    _key: str = ""

    @property
    def key(self) -> str:
        return self._key


def _foreign(key: str) -> Topic:
    topic = _ForeignTopic(dataflow="", prefix="", node="", output=key)
    topic._key = key
    return topic
