"""Zenoh session configuration: loopback only and multicast scouting off by default.

Every process of a dataflow is a Zenoh *peer*. The runner (or coordinator) opens a
"hub" peer that listens on a loopback endpoint; nodes connect to it, and gossip
then gives them direct node-to-node links, so no byte of user data passes through
the hub. Nodes listen on an ephemeral loopback port so that others can reach them.
"""
from __future__ import annotations

import json
import socket
import time

import zenoh

from dora_zenoh import settings

DEFAULT_ENDPOINT = settings.ENDPOINT.default
ENDPOINT_ENV = settings.ENDPOINT.name
LISTEN_ENV = settings.LISTEN.name
ZENOH_CONFIG_ENV = settings.ZENOH_CONFIG.name
RUNTIME_ENV = settings.ZENOH_RUNTIME.name
# A node process runs Zenoh's receive, send, link and accept work on one thread (Zenoh's
# default gives them four runtimes with five worker threads; ``app`` stays as it is).
# Fewer thread hand-overs per message: an 8 B ping-pong between two plain zenoh-python
# processes went from 66-73 to 42-43 us one-way, and dora-zenoh's from 71 to 53 (see
# the README, "Performance").
NODE_RUNTIME: str = settings.ZENOH_RUNTIME.node_default or ""


def default_endpoint() -> str:
    """The hub endpoint: ``$DORA_ZENOH_ENDPOINT`` or ``tcp/127.0.0.1:7447``."""
    return settings.ENDPOINT.get()


def node_listen_endpoint(hub: str) -> str:
    """Where a node listens for direct links: an ephemeral port on the hub's host.

    Follows the hub's protocol and host so that a hub on loopback keeps the whole
    dataflow on loopback; ``$DORA_ZENOH_LISTEN`` overrides it.
    """
    explicit = settings.LISTEN.get()
    if explicit:
        return explicit
    proto, _, rest = hub.partition("/")
    if proto in ("tcp", "udp", "quic", "tls"):
        host = rest.rsplit(":", 1)[0] if ":" in rest else "127.0.0.1"
        return f"{proto}/{host}:0"
    return "tcp/127.0.0.1:0"


def peer_config(connect: list[str], listen: list[str]) -> zenoh.Config:
    """A peer session: explicit endpoints, no multicast, no scouting delay.

    ``$DORA_ZENOH_ZENOH_CONFIG`` may name a JSON5 Zenoh config file used as the
    base (for TLS or wider networks); the endpoints are then still set here.
    """
    path = settings.ZENOH_CONFIG.get()
    conf = zenoh.Config.from_file(path) if path else zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    if not path:
        conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/delay", "0")
    conf.insert_json5("listen/endpoints", json.dumps(listen))
    conf.insert_json5("connect/endpoints", json.dumps(connect))
    return conf


def tune_node_env(env: dict[str, str], blocking_input: bool) -> None:
    """Put dora-zenoh's thread settings for a node process in its environment.

    The one-thread Zenoh runtime (``NODE_RUNTIME``), except for a node with a
    ``queue_policy: block`` input: its Zenoh callback waits for room in the queue, which
    would stall that one thread, and with it the node's own sends. And a short scheduler
    slice for the node's thread, which yields to Zenoh's after a send and polls a little
    before it blocks (see :mod:`dora_zenoh.tuning.sched`). A setting the user made (environment,
    or the node's ``env:``) is kept.
    """
    if not blocking_input:
        env.setdefault(RUNTIME_ENV, NODE_RUNTIME)
    for setting in (settings.NODE_SLICE_US, settings.SEND_YIELD_US, settings.SPIN_US):
        env.setdefault(setting.name, setting.node_default or "0")


def wait_for_peers(session: zenoh.Session, timeout: float) -> bool:
    """Wait until the session has a link to at least one other peer (bounded).

    ``zenoh.open`` may return before its connect endpoint is linked; a session that
    must see the network's state (names in use, tokens) waits here first.
    """
    deadline = time.monotonic() + timeout
    while not list(session.info.peers_zid()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def tcp_port_in_use(endpoint: str) -> bool:
    """Whether a TCP endpoint ``tcp/HOST:PORT`` (or ``tls/HOST:PORT``, TLS over TCP) already has a listener."""
    proto, _, rest = endpoint.partition("/")
    if proto not in ("tcp", "tls") or ":" not in rest:
        return False
    host, port = rest.rsplit(":", 1)
    with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as s:
        s.settimeout(0.5)
        return s.connect_ex((host.strip("[]"), int(port))) == 0


def free_tcp_endpoint(host: str = "127.0.0.1") -> str:
    """An endpoint on a currently free port (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return f"tcp/{host}:{s.getsockname()[1]}"


def is_network_endpoint(endpoint: str) -> bool:
    """Whether an endpoint reaches beyond this machine (not loopback, not a Unix socket)."""
    proto, _, rest = endpoint.partition("/")
    if proto.startswith("unixsock"):
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    return not (host.startswith("127.") or host in ("localhost", "::1"))
