"""The kernel's table of this network namespace's TCP sockets (``/proc/net/tcp`` and ``tcp6``).

Why: two questions are answered from it without touching anyone's socket: which user owns a
listener (dora_zenoh.security.control) and which connections sit on a session's listener
(dora_zenoh.wire.stranded). Linux only; elsewhere the table is empty.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

ESTABLISHED = "01"  # the state column (linux/tcp_states.h)
LISTEN = "0A"
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def rows(port: int, state: str) -> Iterator[list[str]]:
    """The rows (split into columns: local and far address, state, ..., uid at 7, inode at 9)
    of the sockets in ``state`` whose local port is ``port``."""
    for table in _TABLES:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:  # not Linux, or no IPv6
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                yield fields
