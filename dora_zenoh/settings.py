"""Every environment variable dora-zenoh reads or sets, in one registry.

Each :class:`Setting` has its name, its value when unset, a parser and a one-line meaning;
the package reads them only through here (``settings.ENDPOINT.get()``), so the table in
``docs/reference/environment.md`` cannot drift from the code: it is generated from this
registry (``python -m dora_zenoh.settings --markdown``) and a unit test compares the two.

Base layer: standard library only, because node processes read their settings at start-up.
An empty value counts as unset, as it always has.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from dora_zenoh.console import warn

_T = TypeVar("_T")


@dataclass(frozen=True)
class Setting(Generic[_T]):
    """One environment variable.

    ``parse`` turns a non-empty value into ``_T`` and raises ValueError saying what is wrong
    with it ("is not a whole number of microseconds"); :meth:`get` adds the variable's
    name, the value and ``fix`` to that message. ``node_default`` is what the runner puts in
    every node's environment unless the user set the variable (None: it sets nothing).
    """

    name: str
    default: _T
    parse: Callable[[str], _T]
    meaning: str
    fix: str = ""
    node_default: str | None = None
    shown_default: str | None = None  # for the docs table, when ``default`` needs words

    def raw(self) -> str | None:
        """The value as set, or None when unset or empty."""
        return os.environ.get(self.name) or None

    def get(self) -> _T:
        """The parsed value, ``default`` when unset; ValueError (naming the variable, the value and
        the fix) when malformed. The caller decides whether that is fatal or a warning."""
        raw = self.raw()
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{self.name}={raw!r} {exc}" + (f": {self.fix}" if self.fix else "")) from None

    def get_or_default(self, then: str = "") -> _T:
        """:meth:`get`, or ``default`` after a warning naming the fix and ``then`` (what happens
        instead) when malformed: where a bad tuning value must not stop a node or a run."""
        try:
            return self.get()
        except ValueError as exc:
            warn(f"{exc}; {then or f'using {self.default}'}")
            return self.default


def _text(raw: str) -> str:
    return raw


_PORTED = ("tcp", "tls", "udp", "quic", "ws")


def parse_endpoint(raw: str) -> str:
    """A Zenoh endpoint as Zenoh reads it (``tcp/HOST:PORT``, ``tls/...``, ``unixsock-stream/PATH``;
    ``?metadata`` and ``#config`` after it); ValueError saying what is wrong and the form. Checked
    here: Zenoh's own error is a raw Json5Err, and a bad port a ValueError deep in our code."""
    proto, slash, rest = raw.partition("/")
    address = rest.split("?", 1)[0].split("#", 1)[0]
    if not slash or not proto or not address:
        raise ValueError("is not an endpoint: write PROTOCOL/ADDRESS, e.g. tcp/127.0.0.1:7447")
    if proto in _PORTED:
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"is not an endpoint: {proto}/ needs HOST:PORT with a port from 0 to 65535, "
                             f"e.g. {proto}/127.0.0.1:7447")
        if host.strip("[]") in ("0.0.0.0", "::"):
            # Nodes and other machines dial what is listened on (a daemon's nodes died with "the
            # certificate of 0.0.0.0:59937 does not name 0.0.0.0")
            tls = ", and TLS checks that the address dialled is named in the certificate" if proto == "tls" else ""
            raise ValueError(f"is a wildcard address: sessions dial this endpoint too{tls}: give "
                             f"{_own_addresses(proto, port)}")
    return raw


def _own_addresses(proto: str, port: str) -> str:
    """"one of this machine's addresses (tls/10.0.0.5:7447, ...)", for the message above."""
    import socket

    import psutil

    found = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
             if a.family in (socket.AF_INET, socket.AF_INET6) and not a.address.startswith(("127.", "::1", "fe80"))]
    shown = ", ".join(f"{proto}/{f'[{a}]' if ':' in a else a}:{port}" for a in found[:4])
    return (f"one of this machine's addresses ({shown})" if found else "one of this machine's addresses") + \
        f", or {proto}/127.0.0.1:{port} for this machine only"


def _flag(raw: str) -> bool:
    """``1`` means on; any other value off (as it always has)."""
    return raw == "1"


def _on_off(raw: str) -> bool:
    """``0`` or ``1``; anything else is an error (a typo must not silently mean either)."""
    if raw.strip() not in ("0", "1"):
        raise ValueError("is neither 0 nor 1")
    return raw.strip() == "1"


def _auto_on_off(raw: str) -> str:
    """``auto``, ``0`` or ``1``."""
    if raw.strip() not in ("auto", "0", "1"):
        raise ValueError("is not auto, 0 or 1")
    return raw.strip()


def _microseconds(raw: str) -> int:
    """A whole number of µs; blank counts as 0."""
    raw = raw.strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError("is not a whole number of microseconds") from None


def _seconds(raw: str) -> float:
    """A number of seconds >= 0 (``2.5``), at most ``units.MAX_SECONDS`` (a longer wait overflows)."""
    from dora_zenoh.units import MAX_SECONDS  # (a base module: no import cycle, and cheap)

    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise ValueError("is not a number of seconds >= 0")
    if value > MAX_SECONDS:
        raise ValueError(f"is more than {MAX_SECONDS:.0f} seconds (about 31 years)")
    return value


def _optional_microseconds(raw: str) -> int | None:
    value = _microseconds(raw)
    if value < 0:
        raise ValueError("is negative")
    return value


def _size(raw: str) -> int:
    """Bytes, as ``units.parse_size`` reads them (``4096``, ``500kB``, ``16MiB``)."""
    from dora_zenoh.units import parse_size  # lazily: node processes never need it

    try:
        return parse_size(raw)
    except ValueError:
        raise ValueError("is not a size in bytes") from None


def _rto_cap(raw: str) -> int:
    """0, or 1000 to 120000 (ms): what Linux accepts for ``TCP_RTO_MAX_MS``."""
    value = _count(raw)
    if value and not 1000 <= value <= 120_000:
        raise ValueError("is not 0 nor from 1000 to 120000")
    return value


def _count(raw: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("is not a whole number") from None
    if value < 0:
        raise ValueError("is negative")
    return value


# -- a node's place in the network ----------------------------------------------------------
ENDPOINT: Setting[str] = Setting(
    "DORA_ZENOH_ENDPOINT", "tcp/127.0.0.1:7447", parse_endpoint,
    "The hub endpoint: where `run`/`up` listen, and where dynamic and ROS-like nodes and the CLI connect.")
LISTEN: Setting[str | None] = Setting(
    "DORA_ZENOH_LISTEN", None, parse_endpoint,
    "Where a node listens for direct links from its peers.",
    shown_default="an ephemeral port on the hub's host if it is this machine's, else on this "
                  "machine's address on the route to the hub")
ZENOH_CONFIG: Setting[str | None] = Setting(
    "DORA_ZENOH_ZENOH_CONFIG", None, _text,
    "A JSON5 Zenoh config file used as the base of every session (TLS, wider networks); "
    "endpoints are still set by dora-zenoh.",
    shown_default="none: loopback, multicast scouting off")
PREFIX: Setting[str] = Setting(
    "DORA_ZENOH_PREFIX", "dora", _text,
    "The first key chunk of a dynamic or ROS-like node's keys (`{prefix}/{dataflow}/{node}/{output}`).")
DATAFLOW: Setting[str | None] = Setting(
    "DORA_ZENOH_DATAFLOW", None, _text,
    "Which running dataflow a dynamic or ROS-like node joins when `Node(dataflow=...)` is not given.",
    shown_default="any (dynamic), `default` (ROS-like)")

# -- set by the runner for the processes it starts -------------------------------------------
NODE_CONFIG: Setting[str | None] = Setting(
    "DORA_ZENOH_NODE_CONFIG", None, _text,
    "Set by the runner: the node's configuration (JSON of `dora_zenoh.wire.contract.NodeConfig`), with "
    "the run's secret that signs its control notices (docs/guarantees.md): do not log it.",
    shown_default="unset: `Node()` is not under a runner")
NODE_ID: Setting[str | None] = Setting(
    "DORA_NODE_ID", None, _text,
    "Set by the runner: the node's id (dora-rs sets it too; dora-zenoh itself does not read it).",
    shown_default="unset")
DORA_NODE_CONFIG: Setting[str | None] = Setting(
    "DORA_NODE_CONFIG", None, _text,
    "Set by the runner, as dora-rs does: JSON with this run's `dataflow_id` (a UUID) and the `node_id` "
    "(dora-zenoh itself does not read it).",
    shown_default="unset")
RUN_PARENT_PID: Setting[str | None] = Setting(
    "DORA_RUN_PARENT_PID", None, _text,
    "Set by the runner, as dora-rs does: the process id of the runner that started the node "
    "(dora-zenoh itself does not read it).",
    shown_default="unset")
HOT_RELOAD: Setting[bool] = Setting(
    "DORA_ZENOH_HOT_RELOAD", False, _flag,
    "Set by `run --hot-reload` for operator runtimes: `1` reloads an operator when its file changes.",
    shown_default="off")

# -- node behaviour ---------------------------------------------------------------------------
STRICT_OUTPUTS: Setting[bool] = Setting(
    "DORA_ZENOH_STRICT_OUTPUTS", False, _flag,
    "`1`: `send_output` on an output the YAML does not declare raises `UndeclaredOutputError`; "
    "otherwise it warns once per output and drops the message, as dora-rs does.",
    shown_default="off: warn and drop")

# -- performance tuning of node processes -----------------------------------------------------
ZENOH_RUNTIME: Setting[str | None] = Setting(
    "ZENOH_RUNTIME", None, _text,
    "Read by Zenoh: its thread pools. The runner gives each node one thread for Zenoh's I/O, except "
    "a node with a `queue_policy: block` input (two receive threads and a send thread) and one with an "
    "output that such an input on another machine reads (Zenoh's own threads with one receive thread: "
    "`(rx:(worker_threads:1))`); the coordinator and daemons take 24 receive threads "
    "(`(rx:(worker_threads:24))`: a link to an unreachable machine blocks one for 10 s when it closes). "
    "A value you set is tried before anything starts: one Zenoh cannot read stops every command (set in "
    "the environment) or `run`/`start` (in a node's `env:`, naming the node) with Zenoh's parse error.",
    node_default="(rx:(worker_threads:1),tx:(handover:rx),net:(handover:rx),acc:(handover:rx))",
    shown_default="Zenoh's own")
GLIBC_TUNABLES: Setting[str | None] = Setting(
    "GLIBC_TUNABLES", None, _text,
    "Read by glibc. The runner gives a node with an output that a `queue_policy: block` input on "
    "another machine reads `glibc.malloc.hugetlb=1`: its replay cache keeps every message sent, so "
    "each send fills fresh memory until the cache is full, faulted in 2 MiB at a time instead of 4 KiB "
    "(docs/design/zenoh-runtime.md).",
    shown_default="unset (glibc's defaults)")
NODE_SLICE_US: Setting[int] = Setting(
    "DORA_ZENOH_NODE_SLICE_US", 0, _microseconds,
    "Scheduler slice (µs) a node's event thread asks the kernel for; 0 keeps the kernel's default.",
    fix="set it to e.g. 300, or to 0 to keep the kernel's default slice", node_default="300")
SEND_YIELD_US: Setting[int] = Setting(
    "DORA_ZENOH_SEND_YIELD_US", 0, _microseconds,
    "Least time (µs) between two CPU yields after `send_output`, so Zenoh's thread can send; 0 never yields.",
    fix="set it to e.g. 200, or to 0 to never yield", node_default="200")
SPIN_US: Setting[int] = Setting(
    "DORA_ZENOH_SPIN_US", 0, _microseconds,
    "How long (µs) a node that sends polls for its next event before it blocks; 0 blocks at once.",
    fix="set it to e.g. 100, or to 0 to block at once", node_default="100")
BLOCK_FIFO: Setting[bool] = Setting(
    "DORA_ZENOH_BLOCK_FIFO", True, lambda raw: _on_off(raw),
    "`0` feeds `queue_policy: block` inputs through a Python callback on Zenoh's thread (the older "
    "path) instead of a Zenoh FIFO channel that the node's thread reads.",
    shown_default="on (FIFO channels)")
EXPRESS: Setting[bool] = Setting(
    "DORA_ZENOH_EXPRESS", False, _flag,
    "`1` sends every message on its own instead of letting Zenoh batch small ones.",
    shown_default="off (batching)")
SHM: Setting[bool] = Setting(
    "DORA_ZENOH_SHM", True, lambda raw: _on_off(raw),
    "`0` turns Zenoh's shared memory off in a process: messages of 3 KiB and more are then copied "
    "over TCP, and an idle node saves Zenoh's shared-memory housekeeping (~20 wake-ups/s). A link "
    "uses it only when both ends have it on. The runner turns it off in the nodes of a dataflow of "
    "more than 32 nodes unless this is set (for all nodes, or in a node's `env:`).",
    fix="set it to 0 (off) or 1 (on)", shown_default="on (off in dataflows of more than 32 nodes)")
CPU_LATENCY_US: Setting[int | None] = Setting(
    "DORA_ZENOH_CPU_LATENCY_US", None, _optional_microseconds,
    "Default of `--cpu-latency-us`: hold a PM QoS CPU wake-up latency limit (µs) while a dataflow runs.",
    fix="set it to 0 or more microseconds", shown_default="none")
FORKSERVER: Setting[str] = Setting(
    "DORA_ZENOH_FORKSERVER", "auto", _auto_on_off,
    "Start Python nodes by forking them from one process that imported the node side already "
    "(saves ~0.2 s of CPU and ~15 MiB of memory per node): `1` always, `0` never, `auto` for dataflows of at "
    "least 16 Python nodes (docs/design/forkserver.md).",
    fix="set it to auto, 0 or 1", shown_default="`auto`")

# -- how a node starts and ends ---------------------------------------------------------------
START_TIMEOUT: Setting[float | None] = Setting(
    "DORA_ZENOH_START_TIMEOUT", None, _seconds,
    "Seconds a node started with the dataflow waits in `Node()` for the others: for the nodes that read "
    "its outputs, and for every node its runner started to be ready (as dora-rs does). Who is not "
    "ready by then is named, and the others go on without it. Read by `run`/`start` and the daemons.",
    fix="set it to e.g. 120 for nodes that load for minutes before they call Node()",
    shown_default="30, or 0.5 per node of the dataflow if that is more")
EXIT_TIMEOUT: Setting[float] = Setting(
    "DORA_ZENOH_EXIT_TIMEOUT", 10.0, _seconds,
    "Seconds a node that exits waits for its `queue_policy: block` readers to receive all it sent "
    "(`drop_oldest` readers: at most 1 s); who has not by then is named in a warning.",
    fix="set it to e.g. 30, or to 0 not to wait", shown_default="`10`")
STOP_GRACE: Setting[float | None] = Setting(
    "DORA_ZENOH_STOP_GRACE", None, _seconds,
    "Set by the runner: the dataflow's grace period after STOP (`--grace` of `run`/`start`). A node that "
    "got STOP ends its wait for its readers (`DORA_ZENOH_EXIT_TIMEOUT`) a second before that period does, "
    "and says so, instead of being killed at its end.",
    shown_default="none")

# -- several machines (docs/machines.md) -------------------------------------------------------
REPLAY_MESSAGES: Setting[int] = Setting(
    "DORA_ZENOH_REPLAY_MESSAGES", 256, _count,
    "Messages a node keeps per output that a `queue_policy: block` reader on another machine reads, "
    "replayed to that reader after a link outage (more are lost, counted and reported); 0 keeps none. "
    "`DORA_ZENOH_REPLAY_BYTES` bounds the memory this takes.",
    fix="set it to a whole number such as 256 (a 10 s outage at 25 Hz), or to 0 to keep none")
REPLAY_BYTES: Setting[int] = Setting(
    "DORA_ZENOH_REPLAY_BYTES", 64 << 20, _size,
    "Bytes a node keeps per replayed output at most (see `DORA_ZENOH_REPLAY_MESSAGES`): it keeps "
    "fewer messages when the output's largest message so far times that many would be more; 0 sets no bytes "
    "limit.",
    fix="set it to a size such as 64MiB or 500kB, or to 0 for no bytes limit", shown_default="`64MiB`")
TCP_RTO_MAX_MS: Setting[int] = Setting(
    "DORA_ZENOH_TCP_RTO_MAX_MS", 1000, lambda raw: _rto_cap(raw),
    "The longest wait, in ms, between TCP's retransmissions on a link to another machine (Linux 6.15 or "
    "later; set by each process on its own links): after an outage, data resumes within about that long "
    "of the link's return instead of TCP's doubled wait (up to minutes); 0 leaves TCP's own.",
    fix="set it to a whole number of milliseconds from 1000 to 120000, or 0")
SENT_FILE: Setting[str | None] = Setting(
    "DORA_ZENOH_SENT_FILE", None, _text,
    "Set by a machine's runner for a node with replayed outputs: a file where the node keeps how many "
    "messages each of them sent, read by the runner if the node is killed (no end-of-stream notice), "
    "so that readers on other machines count what never reached them.",
    shown_default="unset")

# -- security (docs/security.md) ----------------------------------------------------------------
TLS: Setting[str | None] = Setting(
    "DORA_ZENOH_TLS", None, _text,
    "This machine's certificate (`NAME.pem` from `dora-zenoh certs`; `NAME.key` and `ca.pem` next to it): "
    "every session uses mutual TLS, and endpoints beyond this machine must be `tls/`.",
    shown_default="unset: no TLS")
INSECURE_NETWORK: Setting[bool] = Setting(
    "DORA_ZENOH_INSECURE_NETWORK", False, _flag,
    "`1` accepts a plain (unencrypted, unauthenticated) endpoint beyond this machine, with a warning; "
    "otherwise such an endpoint is refused.",
    shown_default="off: refused")
SECRET_FILE: Setting[str | None] = Setting(
    "DORA_ZENOH_SECRET_FILE", None, _text,
    "Set by a closed run for the processes it starts: its credentials file; a process of yours joins a "
    "closed dataflow with the path the runner printed or `dora-zenoh join NAME` gives (`observer`: read-only).",
    shown_default="unset: open dataflow")
SECURE: Setting[bool] = Setting(
    "DORA_ZENOH_SECURE", False, _flag,
    "Default of `run --secure/--open` and `start --secure/--open`: `1` closes every dataflow to sessions "
    "without its credentials, `0` leaves open those whose YAML does not say `secure: true`.",
    shown_default="unset: the YAML's `secure:`, else open for `run`, closed for `start`")
GROUP: Setting[str | None] = Setting(
    "DORA_ZENOH_GROUP", None, _text,
    "Default of `up --group`: a Unix group whose members may also operate the coordinator.",
    shown_default="none: its user and root only")
CONTROL: Setting[str | None] = Setting(
    "DORA_ZENOH_CONTROL", None, _text,
    "An explicit path of the coordinator's control socket, instead of the one found from the hub endpoint.",
    shown_default="`{base}/dora-zenoh-{uid}/ctl-{port}/sock`")
CONTROL_BASE: Setting[str] = Setting(
    "DORA_ZENOH_CONTROL_BASE", "/tmp", _text,
    "Where the per-user control directories (`dora-zenoh-{uid}/`: the control sockets of coordinators and, "
    "on other machines, of daemons; the locks of `run` names) are made.")

# -- a machine's daemon (several machines) --------------------------------------------------------
MACHINE_ID: Setting[str | None] = Setting(
    "DORA_ZENOH_MACHINE_ID", None, _text,
    "This machine's id, as `deploy: {machine: ID}` names it: the default of `daemon --machine-id` and "
    "of `up --machine-id` (the daemon `up` starts); `run` runs the nodes placed on it.",
    shown_default="none: `daemon` then requires `--machine-id`; `up` takes the host's name")
COORDINATOR: Setting[str | None] = Setting(
    "DORA_ZENOH_COORDINATOR", None, parse_endpoint,
    "Default of `daemon --coordinator`: the coordinator's endpoint, e.g. `tls/192.168.1.10:7447`.",
    shown_default="none: `--coordinator` is then required")
DAEMON_LISTEN: Setting[str] = Setting(
    "DORA_ZENOH_DAEMON_LISTEN", "tcp/127.0.0.1:7448", parse_endpoint,
    "Default of `daemon --listen`: this machine's hub, on an address the other machines reach.")
DAEMON_LABELS: Setting[str | None] = Setting(
    "DORA_ZENOH_DAEMON_LABELS", None, _text,
    "Default of `daemon --labels`: this machine's labels, e.g. `gpu=true,arch=arm64`, which "
    "`deploy: {labels: ...}` asks for.", shown_default="none")
INSECURE_TCP: Setting[bool] = Setting(
    "DORA_ZENOH_INSECURE_TCP", False, _flag,
    "Default of `daemon --insecure-tcp`: `1` allows plain tcp/ endpoints off the machine (with a warning).",
    shown_default="off")

# -- the runner's node logs ---------------------------------------------------------------------
LOG_MAX_BYTES: Setting[int] = Setting(
    "DORA_ZENOH_LOG_MAX_BYTES", 16 << 20, _size,
    "Default of `run --log-max-size`: a node's log file is rotated when it reaches this size (0: never).",
    fix="set it to a size such as 16MiB, 500kB or 4096, or to 0 to never rotate",
    shown_default="`16MiB`")
LOG_BACKUPS: Setting[int] = Setting(
    "DORA_ZENOH_LOG_BACKUPS", 2, _count,
    "Default of `run --log-max-files`: rotated log files kept per node besides the current one.",
    fix="set it to a whole number such as 2, or to 0 to keep none")

# -- several machines (docs/machines.md) ---------------------------------------------------------
SHIP_MAX_BYTES: Setting[int] = Setting(
    "DORA_ZENOH_SHIP_MAX_BYTES", 256 << 20, _size,
    "Read by the coordinator: the most a dataflow's folder may weigh to be shipped to the machines of its "
    "placed nodes (files a `.dora-zenoh-ignore` lists do not count).",
    fix="set it to a size such as 512MiB, or list what the nodes do not need in `.dora-zenoh-ignore`",
    shown_default="`256MiB`")

REGISTRY: tuple[Setting, ...] = (
    ENDPOINT, LISTEN, ZENOH_CONFIG, PREFIX, DATAFLOW,
    NODE_CONFIG, NODE_ID, DORA_NODE_CONFIG, RUN_PARENT_PID, HOT_RELOAD,
    STRICT_OUTPUTS,
    ZENOH_RUNTIME, GLIBC_TUNABLES, NODE_SLICE_US, SEND_YIELD_US, SPIN_US, BLOCK_FIFO, EXPRESS, SHM, CPU_LATENCY_US, FORKSERVER,
    START_TIMEOUT, EXIT_TIMEOUT, STOP_GRACE,
    REPLAY_MESSAGES, REPLAY_BYTES, SENT_FILE, TCP_RTO_MAX_MS,
    TLS, INSECURE_NETWORK, SECRET_FILE, SECURE, GROUP, CONTROL, CONTROL_BASE,
    MACHINE_ID, COORDINATOR, DAEMON_LISTEN, DAEMON_LABELS, INSECURE_TCP,
    LOG_MAX_BYTES, LOG_BACKUPS,
    SHIP_MAX_BYTES,
)


def by_name(name: str) -> Setting:
    """The setting called ``name``; KeyError if dora-zenoh has none."""
    for setting in REGISTRY:
        if setting.name == name:
            return setting
    raise KeyError(name)


def _shown_default(setting: Setting) -> str:
    if setting.node_default is not None and setting.name != ZENOH_RUNTIME.name:
        return f"`{setting.node_default}` in nodes the runner starts (`{setting.default}` otherwise)"
    if setting.shown_default is not None:
        return setting.shown_default
    return f"`{setting.default}`"


PAGE_HEAD = """\
# Environment variables

Every variable dora-zenoh reads or sets. A value given in a node's `env:` in the dataflow YAML
applies to that node only; a malformed tuning value is reported with a warning naming the
variable and the fix, and the node goes on without that tuning.

<!-- Generated from dora_zenoh/settings.py by `python -m dora_zenoh.settings --markdown`;
     edit the registry, not this table (tests/unit/test_settings.py compares them). -->

"""


def markdown_table() -> str:
    """The registry as a Markdown table."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for s in REGISTRY:
        meaning = s.meaning.replace("|", "\\|")
        lines.append(f"| `{s.name}` | {_shown_default(s).replace('|', chr(92) + '|')} | {meaning} |")
    return "\n".join(lines) + "\n"


def markdown_page() -> str:
    """``docs/reference/environment.md``, exactly."""
    return PAGE_HEAD + markdown_table()


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        print("usage: python -m dora_zenoh.settings --markdown > docs/reference/environment.md", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_page())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
