"""Where a node's configuration comes from: the three ways a process becomes a node.

1. Started by a runner or coordinator: the :class:`NodeConfig` is in
   ``$DORA_ZENOH_NODE_CONFIG``, whatever id the script passes (dora does the same).
2. ``Node("plot")`` by hand: a ``path: dynamic`` node of a running dataflow, which
   serves that node's configuration on ``{prefix}/@dz/cfg/{dataflow}/plot``.
3. ``Node("teleop", inputs=..., outputs=...)``: a ROS-like node with no YAML, whose
   configuration is built from its arguments by :mod:`dora_zenoh.node.adhoc`.

Each source also opens the Zenoh session in the way that fits it, and says how long
the start barrier waits by default.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import zenoh

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.errors import NodeConfigError
from dora_zenoh.wire import keys, zconfig
from dora_zenoh.wire.contract import NodeConfig

DYNAMIC_QUERY_TIMEOUT = 5.0  # how long a dynamic node looks for its dataflow (the hub link may be coming up)
_T = TypeVar("_T")


@dataclass
class Joined:
    """A configured node's start: its configuration, its open session, its barrier timeout."""

    cfg: NodeConfig
    session: zenoh.Session
    barrier_timeout: float
    # Its listener beyond this machine, port included, when it links by gossip: the node then
    # re-links peers whose transport closed (wire.relink)
    relink_listen: str | None = None
    # Its own listener, port included (links its readers opened arrive there: wire.stranded)
    listen: str | None = None


def join(node_id: str | None, dataflow: str | None, endpoint: str | None,
         inputs: dict[str, Any] | None, outputs: list[str] | None) -> Joined:
    """The configuration and session of the node ``Node(...)`` was asked to be (see the module doc)."""
    raw = settings.NODE_CONFIG.get()
    if raw:
        return from_runner(raw)
    if not node_id:
        raise NodeConfigError(
            "Node() was not started by dora-zenoh, so it does not know which node it is: start it "
            "with `dora-zenoh run dataflow.yml`, or pass the id of a `path: dynamic` node of a "
            "running dataflow, e.g. Node(\"plot\")")
    dataflow = dataflow or settings.DATAFLOW.get()
    # A closed dataflow of the coordinator lives on a network of its own: its owner's control
    # socket says where, and hands the credentials (imported here: most nodes never need it).
    from dora_zenoh.security.ctl_client import join as where

    hub = where(endpoint, dataflow, member=True) or zconfig.default_endpoint()
    prefix = settings.PREFIX.get()
    if inputs is not None or outputs is not None:  # ROS-like: no YAML, no runner, no barrier
        from dora_zenoh.node import adhoc

        cfg = adhoc.adhoc_config(node_id, inputs, outputs, dataflow, prefix, hub)
        return Joined(cfg, adhoc.open_session(hub), 0.0)
    return from_dataflow(node_id, dataflow, prefix, hub)


def from_runner(raw: str) -> Joined:
    """Source 1: the runner's configuration in the environment."""
    cfg = NodeConfig.from_json(raw, settings.NODE_CONFIG.name)
    session, listen = open_runner_session(cfg)
    zconfig.wait_for_peers(session, 5.0)  # so the runner hears of us right away
    relink = listen if listen is not None and zconfig.is_network_endpoint(listen) else None
    return Joined(cfg, session, cfg.barrier_timeout, relink, listen or cfg.listen)


def open_runner_session(cfg: NodeConfig) -> tuple[zenoh.Session, str | None]:
    """The session of a node a runner started: the links of the runner's plan (its own
    listener; the hub and the nodes it reads from, no gossip auto-connect: see
    ``supervision.topology``), or the hub and gossip when the plan gave it none; and, in
    the latter case, its listener with its port."""
    hold = not cfg.replay_outputs  # its block readers are all on this machine (zconfig.peer_config)
    if cfg.listen is not None:
        try:
            return zconfig.open_peer([cfg.endpoint, *cfg.upstreams], [cfg.listen], autoconnect=False,
                                     hold_block=hold), None
        except zenoh.ZError as exc:
            if "listener" not in str(exc):
                raise
            # The runner holds the port from plan to end (supervision.topology), but a program
            # that binds ports it did not pick, with SO_REUSEADDR, can still listen there first.
            # Its readers dial that port in vain: it dials every node that gossip names instead.
            why = re.search(r"([^:\[]+) \(os error \d+\)", str(exc))  # Zenoh adds its source paths
            warn(f"node '{cfg.node}': cannot listen on {cfg.listen}, which the runner chose for it "
                 f"({why.group(1).strip() if why else exc}): another program took it. It links to "
                 "the dataflow's nodes itself instead (one link to each)")
            return _open_on_a_free_port(cfg, [cfg.endpoint, *cfg.upstreams], hold_block=hold)[0], None
    # Every peer of a run without a plan auto-connects (a machine's part of a multi-machine
    # dataflow, its daemon, its runner): one side of each pair dials (zconfig.peer_config).
    # Its port is chosen here, not by Zenoh: re-linking a peer (wire.relink) needs it.
    return _open_on_a_free_port(cfg, [cfg.endpoint], one_dialer=True, hold_block=hold)


def _open_on_a_free_port(cfg: NodeConfig, connect: list[str], **options: bool) -> tuple[zenoh.Session, str]:
    """A peer session dialling ``connect`` and listening on a free port beside the hub, and
    that listener; another process may take the port before Zenoh binds it: try again."""
    for attempt in range(3):
        listen = zconfig.with_free_port(zconfig.node_listen_endpoint(cfg.endpoint))
        try:
            return zconfig.open_peer(connect, [listen], **options), listen
        except zenoh.ZError:
            if attempt == 2 or listen.endswith(":0"):
                raise
    raise AssertionError("unreachable")


def from_dataflow(node_id: str, dataflow: str | None, prefix: str, hub: str) -> Joined:
    """Source 2: a ``path: dynamic`` node asks the running dataflow for its configuration."""
    listen = zconfig.node_listen_endpoint(hub)
    try:
        session = zconfig.open_peer([hub], [listen])
    except zenoh.ZError as exc:
        if "listener" not in str(exc):
            raise
        raise NodeConfigError(f"node '{node_id}' cannot listen on {listen}: {zconfig.reason(exc)}; set "
                              f"{settings.LISTEN.name} to an endpoint of this machine (e.g. tls/ITS_ADDRESS:0)"
                              ) from None
    try:
        cfg = fetch_dynamic_config(session, node_id, dataflow, prefix, hub)
    except BaseException:
        session.close()
        raise
    return Joined(cfg, session, cfg.barrier_timeout)


def fetch_dynamic_config(session: zenoh.Session, node_id: str, dataflow: str | None, prefix: str,
                         hub: str) -> NodeConfig:
    """Ask the running dataflow(s) for the configuration of dynamic node ``node_id``."""
    selector = keys.config_key(prefix, dataflow or "*", node_id)
    found: list[NodeConfig] = []
    deadline = time.monotonic() + DYNAMIC_QUERY_TIMEOUT
    while not found and time.monotonic() < deadline:
        for reply in session.get(selector, timeout=2.0):
            if reply.ok is not None:
                try:
                    found.append(NodeConfig.from_json(reply.ok.payload.to_bytes(),
                                                      f"the configuration served on {reply.ok.key_expr}"))
                except NodeConfigError:
                    continue  # not a runner of ours (or another version): as if it had not answered
        if not found:
            time.sleep(0.2)  # the hub link may still be coming up
    if not found:
        where = f"dataflow '{dataflow}' has no" if dataflow else "no running dataflow has a"
        raise NodeConfigError(
            f"{where} dynamic node '{node_id}' (asked on {hub}): start the dataflow first "
            f"(`dora-zenoh run dataflow.yml`), and check that the YAML has a node `id: {node_id}` with "
            f"`path: dynamic`; set {settings.ENDPOINT.name} if it runs on another endpoint"
            + ("" if settings.SECRET_FILE.get() else
               ". A dataflow that a coordinator started is closed unless started with --open: name it "
               f"(Node(\"{node_id}\", dataflow=NAME) or {settings.DATAFLOW.name}) and run this on the "
               "coordinator's machine, or on one that runs some of its nodes, as its daemon's user; "
               "from elsewhere, `start --open` it (docs/security.md)"))
    if len(found) > 1:
        names = ", ".join(sorted(c.dataflow for c in found))
        raise NodeConfigError(
            f"several running dataflows have a dynamic node '{node_id}' ({names}): pass "
            f"Node(\"{node_id}\", dataflow=NAME) or set {settings.DATAFLOW.name}")
    return found[0]


def read_setting(read: Callable[[], _T]) -> _T | None:
    """A setting from the environment; None, after a warning that names the fix, when it is
    malformed (a bad tuning value must not stop the node)."""
    try:
        return read()
    except ValueError as exc:
        warn(str(exc))
        return None
