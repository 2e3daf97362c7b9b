"""Zenoh session configuration: loopback only and multicast scouting off by default.

Every process of a dataflow is a Zenoh *peer*. The runner (or coordinator) opens a
"hub" peer that listens on a loopback endpoint. A node the runner starts listens on a
port the runner chose and connects to the hub and to the nodes it reads from, and no
more (``autoconnect=False``: one link per edge, see ``supervision.topology``); tools,
dynamic and ROS-like nodes connect to the hub and let gossip link them to every node.
Either way no byte of user data passes through the hub.
"""
from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping

import zenoh

from dora_zenoh import settings
from dora_zenoh.errors import SettingError
from dora_zenoh.wire import tls
from dora_zenoh.wire.endpoint import parse as parse_endpoint

DEFAULT_ENDPOINT = settings.ENDPOINT.default
TLS_LINK_WAIT = 2.0  # seconds a TLS peer gets to link before its certificates are checked
ENDPOINT_ENV = settings.ENDPOINT.name
LISTEN_ENV = settings.LISTEN.name
ZENOH_CONFIG_ENV = settings.ZENOH_CONFIG.name
RUNTIME_ENV = settings.ZENOH_RUNTIME.name
DROP_WAIT_US = 5000  # see peer_config
DATA_BATCHES = 16  # see peer_config (Zenoh's most)
# see peer_config's hold_block: past the 10 s lease after which a reader that gives no sign of life
# counts as gone. Not longer: a put that waits on a link the lease closed is not woken by that
# close (Zenoh 1.10), so a day (3 Dec) kept a paused reader's sender stuck for good (a helper's run).
BLOCK_WAIT_US = 15 * 10**6
KEEP_ALIVE = 2  # keep-alives per lease on an idle link (see peer_config)
# A node process runs Zenoh's receive, send, link and accept work on one thread (Zenoh's
# default gives them four runtimes with five worker threads; ``app`` stays as it is):
# fewer thread hand-overs per message (measured: see docs/design/zenoh-runtime.md).
NODE_RUNTIME: str = settings.ZENOH_RUNTIME.node_default or ""
# A node with a ``queue_policy: block`` input: its input waits for room on a receive thread
# (in a FIFO channel, or in a callback), so sending must have a thread of its own (on the one
# thread, a full FIFO held the node's own sends for 5 s: measured), and a second receive worker
# keeps the node's other links (STOP, other inputs, acknowledgements) moving meanwhile. Three
# threads instead of Zenoh's five: fewer hand-overs per message (docs/design/zenoh-runtime.md).
BLOCK_NODE_RUNTIME = "(rx:(worker_threads:2),tx:(worker_threads:1),net:(handover:rx),acc:(handover:rx))"
# A node with a replayed output: glibc asks the kernel for transparent huge pages for its heap
# (where THP is "madvise", the default of most distributions; "never": nothing changes). Its
# replay cache keeps every message sent, so each send copies into memory not touched before,
# until the cache is full: 2 MiB per page fault instead of 4 KiB (docs/design/zenoh-runtime.md).
REPLAY_TUNABLES = "glibc.malloc.hugetlb=1"
# A node with a replayed output: Zenoh's own runtime (its send, link and accept threads; see
# tune_node_env) but one receive worker, not two: the second woke on every message and is not
# relied on (the node's thread never waits for Zenoh while a FIFO can fill). 8 B one way 101-105
# against 101-107 µs, 64 KiB 158-162 against 164-168, receive CPU 20 against 25 µs a round trip
# (docs/design/zenoh-runtime.md).
REPLAY_NODE_RUNTIME = "(rx:(worker_threads:1))"
# The coordinator's and daemons' runtime: many receive workers. Zenoh closes a TCP/TLS link with
# SO_LINGER 10 s on one of them, and when the far side is unreachable (a partition) the close
# blocks that thread for the whole 10 s, once per link to that machine (its daemon and every node
# there). With Zenoh's 2 receive workers the control socket's queries waited behind those closes:
# `list` took 10-29 s during a partition (docs/machines.md). Idle workers cost no CPU.
SUPERVISOR_RUNTIME = "(rx:(worker_threads:24))"
_SUPERVISOR_RUNTIME_OURS = False  # tune_supervisor_runtime set it (not the user): children do not inherit it


def default_endpoint() -> str:
    """The hub endpoint: ``$DORA_ZENOH_ENDPOINT`` or ``tcp/127.0.0.1:7447`` (SettingError, naming
    the variable and the form, for one that is not an endpoint)."""
    try:
        return settings.ENDPOINT.get()
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def node_listen_endpoint(hub: str) -> str:
    """Where a node listens for direct links: an ephemeral port on the hub's host.

    Follows the hub's protocol and host so that a hub on loopback keeps the whole
    dataflow on loopback; ``$DORA_ZENOH_LISTEN`` overrides it.
    """
    explicit = settings.LISTEN.get()
    if explicit:
        return explicit
    where = parse_endpoint(hub)
    if where.proto in ("tcp", "udp", "quic", "tls"):
        if where.port is None:
            return f"{where.proto}/127.0.0.1:0"
        host = _address_towards(where.host, where.port)
        return f"{where.proto}/{f'[{host}]' if ':' in host else host}:0"
    return "tcp/127.0.0.1:0"


def _address_towards(host: str, port: int) -> str:
    """``host`` if this machine has that address, else this machine's address on the route to it:
    a process started by hand on the robot, given the offboard coordinator's endpoint, tried to
    listen on the coordinator's address (Zenoh: "Can not create a new TCP listener")."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except OSError:
        return host  # a name that does not resolve: Zenoh's own error says so
    if _own_address(str(addr[0])):
        return host  # ours (loopback, or this machine's own address)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as route:
            route.connect(addr)  # (UDP: no packet is sent, the kernel picks the route)
            return str(route.getsockname()[0])
    except OSError:
        return host  # no route: Zenoh's own error says so


# A node with ``autoconnect=False`` dials its sources' listeners, which may not be up yet:
# retry soon (Zenoh's default waits 1 s, then 2 s, then 4 s between tries). The gap after
# a late source starts listening delays its start barrier, while its own sources already
# send: capped at 1 s, a timer pipeline dropped its first messages in ~1 run of 10 (loaded
# machine). Zenoh also redials the listener of a source that has exited: at 100 ms that
# costs ~0.4 % of a core per such link (measured), 20 ms cost ~2 %.
CONNECT_RETRY = "{period_init_ms: 10, period_max_ms: 100, period_increase_factor: 2}"


def peer_config(connect: list[str], listen: list[str], secret: str | None = None,
                autoconnect: bool = True, one_dialer: bool = False, first_dialer: bool = False,
                hold_block: bool = False) -> zenoh.Config:
    """A peer session: explicit endpoints, no multicast, no scouting delay.

    ``autoconnect=False``: link only to ``connect``, not to every peer that gossip
    names (gossip among all of a dataflow's nodes builds a full mesh). The session
    still tells the hub where it listens, so tools can reach it.

    ``one_dialer``: of two peers that learn of each other by gossip, only the one with the
    greater Zenoh id dials (as for authenticated sessions, see below). Only for sessions
    whose every gossip peer auto-connects (multi-machine: the coordinator, a daemon's hub, a
    machine's part and its nodes): a peer that does not (a planned node, ``autoconnect=False``)
    and has the greater id would never be dialled, so tools keep Zenoh's default.

    ``first_dialer`` (implies ``one_dialer``): a session id greater than any other's
    (:func:`first_dialer_zid`), so this session dials every peer gossip names, planned
    nodes included, and no peer dials it: the coordinator, which queries every node, and
    every session of a closed run that auto-connects (its tools, its runner).

    ``hold_block``: a ``BLOCK`` put waits for room up to 15 s (BLOCK_WAIT_US), not Zenoh's 5 s
    (``block/wait_before_close``), after which Zenoh closed the link and the reader lost
    everything queued and sent until it was linked again: a node busy 12 s in its own code lost
    19,887 of 20,000 messages of a ``queue_policy: block`` input (docs/guarantees.md). For the
    nodes of one machine; a node whose block readers are on other machines keeps 5 s (its
    outages: dora_zenoh.node.replay).

    ``$DORA_ZENOH_ZENOH_CONFIG`` may name a JSON5 Zenoh config file used as the
    base (for wider networks); the endpoints are then still set here. An endpoint
    beyond this machine must be TLS with ``$DORA_ZENOH_TLS`` certificates (mutual
    authentication), unless the user opted out (:mod:`dora_zenoh.wire.tls`). ``secret``
    (default ``$DORA_ZENOH_SECRET_FILE``) closes the session to anyone without the
    dataflow's credentials (:mod:`dora_zenoh.wire.auth`).
    """
    path = settings.ZENOH_CONFIG.get()
    files = tls.tls_files()
    tls.check_endpoints(connect + listen, files, own_config=bool(path))
    conf = zenoh.Config.from_file(path) if path else zenoh.Config()
    if files is not None:
        conf.insert_json5("transport/link/tls", json.dumps(tls.zenoh_tls_json(files)))
    secret = secret or settings.SECRET_FILE.get()
    if secret:
        # Imported here: its imports (secrets, hashlib, shutil) cost every node ~10 ms of start-up.
        from dora_zenoh.wire import auth

        usrpwd, acl = auth.session_auth(secret)
        conf.insert_json5("transport/auth/usrpwd", json.dumps(usrpwd))
        if acl is None:  # an observer: connects only, so nobody needs to present it the dataflow's password
            listen = []
        else:
            conf.insert_json5("access_control", json.dumps(acl))
        # Every session of a closed run that dials gossip's peers ranks first: of two such, one
        # dials (greater-zid), and each dials the run's planned nodes, which dial nobody (and
        # keep a random id, so that they rank below). So do a machine's part's nodes (one_dialer:
        # they listen and dial by greater id among themselves): ranked first, a node would wait
        # for an observer tool, which never listens, to dial it.
        first_dialer = first_dialer or (autoconnect and not one_dialer)
    if first_dialer:
        conf.insert_json5("id", json.dumps(first_dialer_zid()))
        one_dialer = True
    if one_dialer and autoconnect:
        # Two peers that dial each other at once (both learnt of the other by gossip)
        # sometimes both drop the pair of links, and gossip never retries: 3 of 15 trials of
        # three authenticated zenoh-python peers (0 of 15 without usrpwd); and after a healed
        # partition between machines, nodes whose cross-machine links never came back (1 run
        # in 4-10 of tests/integration/test_machines.py -k partition). Letting only the peer
        # with the greater id dial: 0 of 20, and data resumed in 30 of 30 runs (docs/machines.md).
        conf.insert_json5("scouting/gossip/autoconnect_strategy", json.dumps({"peer": {"to_peer": "greater-zid"}}))
    conf.insert_json5("mode", '"peer"')
    if not path:
        conf.insert_json5("scouting/multicast/enabled", "false")
        # Outputs that no `queue_policy: block` reader reads are published with congestion
        # control DROP: a put towards a stalled reader waits this long (µs) for room, then
        # drops for that reader alone (Zenoh's default, 1 ms, dropped messages of healthy
        # readers on a loaded machine). See docs/guarantees.md for what was measured.
        conf.insert_json5("transport/link/tx/queue/congestion_control/drop/wait_before_drop", str(DROP_WAIT_US))
        # A put waits (then drops, with DROP) only when the link's queue has no free batch. Zenoh's
        # 2 for data ran out in a burst while the sender's Zenoh thread waited for a CPU, and a
        # relay lost its burst's tail towards a reader with room (docs/guarantees.md). Batches are
        # allocated when first used.
        conf.insert_json5("transport/link/tx/queue/size/data", str(DATA_BATCHES))
        if hold_block:
            conf.insert_json5("transport/link/tx/queue/congestion_control/block/wait_before_close",
                              str(BLOCK_WAIT_US))
        # An idle link sends a keep-alive every lease / KEEP_ALIVE: Zenoh's 4 (every 2.5 s) was a
        # third to a half of an idle 100-node chain's CPU (docs/scale-and-logs.md). The lease
        # (10 s: when a silent peer counts as gone) is unchanged; one late keep-alive is still
        # survived.
        conf.insert_json5("transport/link/tx/keep_alive", str(KEEP_ALIVE))
    if not _shm_on():  # see settings.SHM: what an idle node costs vs zero-copy of large messages
        conf.insert_json5("transport/shared_memory/enabled", "false")
    conf.insert_json5("scouting/delay", "0")
    conf.insert_json5("listen/endpoints", json.dumps(listen))
    conf.insert_json5("connect/endpoints", json.dumps(connect))
    if not autoconnect:
        conf.insert_json5("scouting/gossip/autoconnect", "{router: [], peer: []}")
        conf.insert_json5("connect/retry", CONNECT_RETRY)
    return conf


def _shm_on() -> bool:
    """settings.SHM; a malformed value is named in a warning and shared memory stays on."""
    return settings.SHM.get_or_default("shared memory stays on")


def first_dialer_zid() -> str:
    """A random Zenoh id that ``greater-zid`` ranks above any random one but with odds of 2^-32.

    Zenoh 1.10 compares ids byte by byte from the least significant (the *end* of the hex
    form): "ff01" ranks below "2" (measured, docs/machines.md). Ending in ``ffffffff`` puts an
    id first; the random rest keeps two coordinators' ids apart.
    """
    import secrets  # here: nodes never need it, and it costs their start-up

    head = secrets.token_hex(12)
    return "1" + head[1:] + "ffffffff"  # no leading zero: Zenoh refuses one


def open_peer(connect: list[str], listen: list[str], autoconnect: bool = True,
              one_dialer: bool = False, hold_block: bool = False) -> zenoh.Session:
    """``zenoh.open(peer_config(connect, listen, ...))``, with a TLS failure explained.

    Zenoh says only "Unable to connect" when a certificate is refused; this names
    the certificate to check (:func:`dora_zenoh.wire.tls.diagnose`).
    A peer whose TLS handshake is refused still opens (it retries in the background,
    silently), so with TLS a session that has no link after a moment is checked too.
    """
    conf = peer_config(connect, listen, autoconnect=autoconnect, one_dialer=one_dialer, hold_block=hold_block)
    files = tls.tls_files()
    remote = [e for e in connect if e.startswith("tls/")] if files is not None else []
    try:
        session = zenoh.open(conf)
    except zenoh.ZError as exc:
        if files is None or not remote or "listener" in str(exc):  # (a listener: not the TLS link)
            raise
        raise tls.TlsSetupError(f"cannot link to {remote[0]} over TLS: {tls.diagnose(remote[0], files)}") from None
    if files is not None and remote and not wait_for_peers(session, TLS_LINK_WAIT):
        problem = tls.certificate_problem(remote[0], files)
        if problem is not None:
            session.close()
            raise tls.TlsSetupError(f"cannot link to {remote[0]} over TLS: {problem}")
    return session


# A dataflow of more nodes than this gets Zenoh's shared memory only where the user asks for it
# (see tune_node_env).
SHM_AUTO_NODES = 32


def tune_node_env(env: dict[str, str], blocking_input: bool, nodes: int = 1, replayed_output: bool = False) -> None:
    """Put dora-zenoh's thread and shared-memory settings for a node process in its environment.

    The one-thread Zenoh runtime (``NODE_RUNTIME``), except for a node with a
    ``queue_policy: block`` input: its input waits for room on a Zenoh thread, which
    would stall that one thread, and with it the node's own sends; and except for a node
    with a replayed output (``replayed_output``, see :mod:`dora_zenoh.node.replay`): Zenoh's
    heartbeat task and cache replies then wait for room on a Zenoh thread, which must not be
    the one that sends (and so makes room): it keeps Zenoh's own send, link and accept threads
    with one receive worker (``REPLAY_NODE_RUNTIME``; the three threads of ``BLOCK_NODE_RUNTIME``
    were faster but lost data across outages: docs/design/zenoh-runtime.md),
    and gets ``REPLAY_TUNABLES`` (huge pages for the memory its replay cache fills; such a node
    is not forked from the zygote, since glibc reads them as the process starts). The former
    gets ``BLOCK_NODE_RUNTIME``, with a send thread of its own. And a short scheduler
    slice for the node's thread, which yields to Zenoh's after a send and polls a little
    before it blocks (see :mod:`dora_zenoh.tuning.sched`). A setting the user made (environment,
    or the node's ``env:``) is kept.

    Shared memory: a process whose link has it on at both ends wakes 20 times a second for
    Zenoh's shared-memory watchdog (~0.12 % of a core; a link with it off at either end costs
    nothing), which a dataflow of ``nodes`` nodes pays ``nodes`` times while idle. Up to
    SHM_AUTO_NODES nodes it stays on (zero-copy of large messages); in a larger dataflow it is
    off unless the user set ``DORA_ZENOH_SHM`` (for all, or in the ``env:`` of a node that sends
    large messages and of its readers).
    """
    if replayed_output:  # Zenoh's own threads, one receive worker (see above); huge pages for its replay cache
        env.setdefault(settings.GLIBC_TUNABLES.name, REPLAY_TUNABLES)
        env.setdefault(RUNTIME_ENV, REPLAY_NODE_RUNTIME)
    else:
        env.setdefault(RUNTIME_ENV, BLOCK_NODE_RUNTIME if blocking_input else NODE_RUNTIME)
    if nodes > SHM_AUTO_NODES:
        env.setdefault(settings.SHM.name, "0")
    for setting in (settings.NODE_SLICE_US, settings.SEND_YIELD_US, settings.SPIN_US):
        env.setdefault(setting.name, setting.node_default or "0")


def tune_supervisor_runtime() -> None:
    """Give this process (a coordinator or daemon, before its first session) SUPERVISOR_RUNTIME,
    unless ZENOH_RUNTIME is set. Zenoh reads it once, when its runtime starts."""
    import os

    global _SUPERVISOR_RUNTIME_OURS
    if RUNTIME_ENV not in os.environ:
        os.environ[RUNTIME_ENV] = SUPERVISOR_RUNTIME
        _SUPERVISOR_RUNTIME_OURS = True


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a process this one starts: without the Zenoh runtime that
    :func:`tune_supervisor_runtime` gave this process (24 receive threads are the supervisor's
    need; a node gets its own, see :func:`tune_node_env`), with the user's if they set one."""
    env = dict(environ)
    if _SUPERVISOR_RUNTIME_OURS and env.get(RUNTIME_ENV) == SUPERVISOR_RUNTIME:
        del env[RUNTIME_ENV]
    return env


def reason(exc: BaseException) -> str:
    """A Zenoh error's message without the Rust source locations it carries ("... at
    /root/.cargo/git/checkouts/.../tcp.rs:61."), which mean nothing to a user."""
    import re

    text = re.sub(r"\s+at /\S+?\.rs:\d+\.?", "", str(exc))
    return text.replace("[", "").replace("]", "").strip()


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
    return dial(endpoint, 0.5) is True


def dial(endpoint: str, timeout: float) -> bool | None:
    """A plain TCP dial of ``tcp/HOST:PORT`` or ``tls/HOST:PORT``: True if it answers, False if
    refused (nothing listens), None if it cannot tell (no answer in time, no route, not such an
    endpoint, or a port that is not a number)."""
    where = parse_endpoint(endpoint)
    if where.stream_port is None:
        return None
    host = where.host
    address = (host, where.stream_port)
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(address)
        return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return None


def with_free_port(endpoint: str) -> str:
    """``endpoint`` with a free port in place of ``:0`` (TCP or TLS; anything else unchanged).

    Another process may take the port before Zenoh binds it: the caller opens again."""
    proto, _, rest = endpoint.partition("/")
    host = rest[:-2]
    if proto not in ("tcp", "tls") or not rest.endswith(":0") or ":" in host:  # (IPv6: left to Zenoh)
        return endpoint
    return f"{proto}/" + free_tcp_endpoint(host).split("/", 1)[1]


def free_tcp_endpoint(host: str = "127.0.0.1") -> str:
    """An endpoint on a currently free port (the kernel picks it); ``host`` may be ``[IPv6]``."""
    bare = host.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((bare, 0))
        return f"tcp/{host}:{s.getsockname()[1]}"


def free_endpoint_beside(endpoint: str) -> str:
    """A free port on ``endpoint``'s host, in its protocol (a machine's other hubs follow its
    address and its TLS); a loopback TCP one for an endpoint that is not TCP or TLS."""
    where = parse_endpoint(endpoint)
    if where.stream_port is None:
        return free_tcp_endpoint()
    return f"{where.proto}/" + free_tcp_endpoint(where.netloc).split("/", 1)[1]


def on_this_machine(endpoint: str) -> bool:
    """Whether ``endpoint``'s address is one of this machine's."""
    return _own_address(parse_endpoint(endpoint).host.strip("[]"))


def _own_address(host: str) -> bool:
    """Whether ``host`` (an address, or a name it resolves to) is this machine's: it can be bound here."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


def is_network_endpoint(endpoint: str) -> bool:
    """Whether an endpoint reaches beyond this machine (not loopback, not a Unix socket)."""
    if endpoint.startswith("unixsock"):
        return False
    host = parse_endpoint(endpoint).host
    return not (host.startswith("127.") or host in ("localhost", "::1"))
