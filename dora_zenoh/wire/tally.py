"""How many messages a node sent per replayed output, kept where its runner can read it after the node died.

A sender whose remote ``queue_policy: block`` reader is cut off keeps its last messages for
replay in its own process. Killed (SIGKILL, a crash) while the link is down, it takes them
with it, and it sends no end-of-stream notice: nobody knew how many it had sent, and the
reader could not count what never reached it; nor when it ends with ``os._exit``. So the
node keeps that count in a small file its runner named (``DORA_ZENOH_SENT_FILE``), updated in
place on every send of a replayed output (a memory-mapped 8-byte store, no system call), and
marks the file once its end-of-stream notice (which carries the same counts) is out. The
runner reads the file when the process ended without a notice and without that mark,
whatever its exit status, and declares the total as it does for an ended node
(``keys.sent_token``): the reader counts the difference once the link is back.

Layout: a JSON list of the output names on the first line, padded to HEADER bytes (its last
byte is the mark), then one little-endian 64-bit count per output, in that order.
"""
from __future__ import annotations

import json
import mmap
import os
import struct

HEADER = 4096
SLOTS = 64  # outputs tallied per node at most (more: the rest are not counted)
NOTICED = HEADER - 1  # 1 once the node's end-of-stream notice is out: its counts come with it
_COUNT = struct.Struct("<Q")


class SentTally:
    """The writer, in the node: one slot per replayed output."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, HEADER + SLOTS * _COUNT.size)
            self._map = mmap.mmap(fd, HEADER + SLOTS * _COUNT.size)
        finally:
            os.close(fd)
        self._names: list[str] = []

    def slot(self, output: str) -> int | None:
        """The offset of ``output``'s count (None when every slot is taken)."""
        if output in self._names:
            return HEADER + self._names.index(output) * _COUNT.size
        header = json.dumps([*self._names, output]).encode() + b"\n"
        if len(self._names) >= SLOTS or len(header) > HEADER:
            return None
        self._names.append(output)
        self._map[:len(header)] = header
        return HEADER + (len(self._names) - 1) * _COUNT.size

    def set(self, offset: int, count: int) -> None:
        _COUNT.pack_into(self._map, offset, count)

    def mark_noticed(self) -> None:
        """The node's end-of-stream notice went out: its runner takes the counts from it (marked
        after the notice: a process killed in between is counted twice rather than not at all)."""
        self._map[NOTICED] = 1


def read(path: str) -> dict[str, int]:
    """The counts a node left in ``path`` ({} if none, or unreadable)."""
    try:
        with open(path, "rb") as f:
            data = f.read(HEADER + SLOTS * _COUNT.size)
        names = json.loads(data[:HEADER].split(b"\n", 1)[0] or b"[]")
        return {str(name): _COUNT.unpack_from(data, HEADER + i * _COUNT.size)[0]
                for i, name in enumerate(names) if HEADER + (i + 1) * _COUNT.size <= len(data)}
    except (OSError, ValueError, TypeError, struct.error):
        return {}


def noticed(path: str) -> bool:
    """Whether the node that kept ``path`` sent its end-of-stream notice (:meth:`SentTally.mark_noticed`)."""
    try:
        with open(path, "rb") as f:
            f.seek(NOTICED)
            return f.read(1) == b"\x01"
    except OSError:
        return False
