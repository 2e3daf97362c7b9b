"""A run's hub: the Zenoh session its nodes link to, and the dataflow's name on that network.

Listen on the endpoint; if it is taken (another run, a coordinator), join that network, listen
on a free port of our own and make the name unique there. A closed run (``--secure`` or
``secure: true``) never joins: it makes its credentials (or, as another machine's part, is given
them) and listens alone, linked only to the other parts' hubs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zenoh

from dora_zenoh.console import warn
from dora_zenoh.supervision.namelock import NameLock
from dora_zenoh.wire import auth, keys, relink, zconfig

PEER_LINK_WAIT = 3.0  # s a starting run waits for the peers it dials (its parts', or the network it joins) to link


@dataclass
class Hub:
    """What :func:`open_hub` made: the caller closes ``session``, ``relinker`` and ``name_lock``."""

    session: zenoh.Session
    node_endpoint: str  # where the run's nodes link to it
    name: str  # the dataflow's name, unique on that network
    secret: Path | None = None  # a closed run's credentials
    relinker: relink.Relinker | None = None
    name_lock: NameLock | None = None


@dataclass
class HubRequest:
    """What a run asks of its hub (from its options)."""

    endpoint: str
    name: str
    prefix: str
    closed: bool = False
    secret: Path | None = None  # (a closed part on another machine) the credentials it was given
    peers: tuple[str, ...] = ()  # (a closed part) the other parts' hubs to link to
    part: bool = False  # one machine's part of a dataflow whose name the coordinator chose
    lock_name: bool = False  # a `run` of its own: hold the name's lock file (supervision.namelock)


def open_hub(req: HubRequest) -> Hub:
    """The hub of the run ``req`` describes; nothing is left open if this raises."""
    joined = zconfig.tcp_port_in_use(req.endpoint)
    if req.closed:  # a network of its own, closed to others
        secret = req.secret or auth.make_secret()
        own = zconfig.free_endpoint_beside(req.endpoint) if joined else req.endpoint
        session = zenoh.open(zconfig.peer_config(list(req.peers), [own], secret=str(secret)))
        if req.peers:
            zconfig.wait_for_peers(session, PEER_LINK_WAIT)
        return Hub(session, own, req.name, secret=secret)
    if joined:
        return _join(req)
    try:
        session = zenoh.open(zconfig.peer_config([], [req.endpoint]))
    except zenoh.ZError as exc:
        if "in use" not in str(exc):
            raise
        # Another run took the endpoint between our look and our listen (two runs started at
        # once: this one failed with Zenoh's raw error): join it instead.
        return _join(req)
    hub = Hub(session, req.endpoint, req.name)
    _unique_name(hub, req, ask_network=False)  # (no other peer yet: only this machine's runs can hold it)
    return hub


def _join(req: HubRequest) -> Hub:
    """The endpoint is another run's (or a coordinator's): link to it, listen on a free port of
    our own, and make our name unique on that network."""
    own = zconfig.free_endpoint_beside(req.endpoint)
    session = zenoh.open(zconfig.peer_config([req.endpoint], [own], one_dialer=req.part))
    hub = Hub(session, own, req.name)
    if req.part and zconfig.is_network_endpoint(own):  # see wire.relink
        hub.relinker = relink.Relinker(session, own)
    linked = zconfig.wait_for_peers(session, PEER_LINK_WAIT)
    if not req.part:  # a run of its own: its name must be free on that network
        _unique_name(hub, req, ask_network=linked)
        if not linked:
            warn(f"dataflow '{hub.name}': {req.endpoint} answers, but no Zenoh peer there linked within "
                 f"{PEER_LINK_WAIT:g} s (another program on that port, or a machine too loaded to answer): "
                 f"this dataflow runs on its own at {own}, and its name was not checked against others there")
    return hub


def _unique_name(hub: Hub, req: HubRequest, ask_network: bool) -> None:
    """On a shared network, two dataflows may not have the same name: suffix ours. A `run` of its
    own also holds its name's lock file: the network cannot see a run started at the same moment,
    which has not declared its name yet."""
    base, n = hub.name, 1
    try:
        while True:
            lock = NameLock(req.endpoint, req.prefix, hub.name) if req.lock_name else None
            if lock is None or lock.take():
                token = keys.runner_token(req.prefix, hub.name)
                if not ask_network or not list(hub.session.liveliness().get(token, timeout=keys.NAME_CHECK_TIMEOUT)):
                    hub.name_lock = lock
                    return
                if lock is not None:
                    lock.release()
            n += 1
            hub.name = f"{base}-{n}"
    except BaseException:
        hub.session.close()
        if hub.relinker is not None:
            hub.relinker.close()
        raise
