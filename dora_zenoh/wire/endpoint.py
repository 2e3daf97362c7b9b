"""One reading of a Zenoh endpoint or locator: ``proto/host:port``, then ``?…`` or ``#…``.

Every caller agrees on IPv6 brackets, on what follows the port, and on which protocols have
a host and a port at all. Before (5 Dec), eleven places split endpoints each their own way:
a ``#metadata`` after the port was part of the port in some (the socket's owner was not
found) and ignored in others.
"""
from __future__ import annotations

from typing import NamedTuple

NETWORK_PROTOCOLS = ("tcp", "udp", "tls", "quic", "ws")
STREAM_PROTOCOLS = ("tcp", "tls")  # what a TCP socket carries: /proc/net/tcp, dials, listeners


class Endpoint(NamedTuple):
    """``proto``, ``host`` without brackets (the rest, for a protocol with no host) and ``port``
    (None when missing or not a number)."""

    proto: str
    host: str
    port: int | None

    @property
    def netloc(self) -> str:
        """The host as an endpoint spells it (an IPv6 address in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def stream_port(self) -> int | None:
        """The port of a TCP or TLS endpoint; None for any other."""
        return self.port if self.proto in STREAM_PROTOCOLS else None


def parse(endpoint: object) -> Endpoint:
    """``endpoint`` (a string, or a Zenoh locator) read once, the same way everywhere."""
    proto, _, rest = str(endpoint).partition("/")
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    if proto not in NETWORK_PROTOCOLS:
        return Endpoint(proto, rest, None)
    if rest.startswith("["):  # [IPv6]:port
        host, _, after = rest[1:].partition("]")
        port = after[1:] if after.startswith(":") else ""
    else:
        host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    return Endpoint(proto, host, int(port) if port.isdigit() else None)
