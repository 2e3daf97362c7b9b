"""This process's TCP connections as the kernel lists them (``/proc/net/tcp``, ``tcp6`` and
``/proc/self/fd``), and a way to act on one of them.

Why: the questions asked of the sockets (which user owns a listener:
dora_zenoh.security.control; which descriptors carry a session's links: dora_zenoh.wire.backoff
and dora_zenoh.wire.stranded) are answered without making a socket object on anyone's
descriptor: one made on a user's socket under ``socket.setdefaulttimeout()`` set that socket
non-blocking (its file description is shared with every duplicate). Only a descriptor found
here is duplicated, to be acted on. Linux only; elsewhere the tables are empty.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from dora_zenoh.wire.endpoint import parse

ESTABLISHED = "01"  # the state column (linux/tcp_states.h)
LISTEN = "0A"
FDS = "/proc/self/fd"
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")

Address = tuple[str, int]  # (IP in one spelling, port)


def rows(port: int | None, state: str) -> Iterator[list[str]]:
    """The rows (split into columns: local and far address, state, ..., uid at 7, inode at 9)
    of the sockets in ``state`` whose local port is ``port`` (any, for None)."""
    for table in _TABLES:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:  # not Linux, or no IPv6
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == state and (
                    port is None or int(fields[1].rsplit(":", 1)[1], 16) == port):
                yield fields


def ip_address(host: str, port: int) -> Address | None:
    """``(host, port)`` with the IP in one spelling (no scope, an IPv4-mapped IPv6 address as
    IPv4, brackets dropped); None when ``host`` is a name, not an IP."""
    try:
        return _spelled(ipaddress.ip_address(host.strip("[]").split("%", 1)[0])), port
    except ValueError:
        return None


def _spelled(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.version == 6 and ip.ipv4_mapped is not None:  # a dual-stack socket's IPv4 peer
        ip = ip.ipv4_mapped
    return ip.compressed


def address_of(endpoint: object) -> Address | None:
    """The address of a TCP or TLS endpoint or Zenoh locator (``tls/[::1]:7447#…``), as
    :func:`connections` spells it; None for any other, or a host name."""
    where = parse(endpoint)
    return None if where.stream_port is None else ip_address(where.host, where.stream_port)


def _hex_address(text: str) -> Address:
    """An address as ``/proc/net/tcp`` prints it: hex IP in 32-bit words of the host's order, hex port."""
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return _spelled(ipaddress.ip_address(raw)), int(port, 16)


def connections(port: int | None = None) -> dict[int, tuple[Address, Address]]:
    """This process's established TCP connections whose local port is ``port`` (any, for None):
    descriptor -> (local, far)."""
    found = {int(fields[9]): (_hex_address(fields[1]), _hex_address(fields[2]))
             for fields in rows(port, ESTABLISHED)}
    if not found:
        return {}
    mine: dict[int, tuple[Address, Address]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir(FDS):
            with contextlib.suppress(OSError, ValueError):  # closed meanwhile
                link = os.readlink(f"{FDS}/{name}")
                if link.startswith("socket:[") and int(link[8:-1]) in found:
                    mine[int(name)] = found[int(link[8:-1])]
    return mine


@contextlib.contextmanager
def duplicate(fd: int) -> Iterator[socket.socket]:
    """A socket object on a duplicate of ``fd`` (one :func:`connections` found): closing it
    leaves the owner's descriptor open."""
    dup = os.dup(fd)
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        raise
    with sock:
        yield sock


def same_connection(sock: socket.socket, pair: tuple[Address, Address]) -> bool:
    """Whether ``sock`` still is the connection ``pair`` (a descriptor may be closed and reused
    between a look and the act)."""
    return (ip_address(*sock.getsockname()[:2]), ip_address(*sock.getpeername()[:2])) == pair
