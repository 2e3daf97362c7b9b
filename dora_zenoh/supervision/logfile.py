"""A node's log file: rotated by size, and never a reason for the node or the runner to stop.

The runner drains every node's stdout and stderr into ``log_<node>.txt``. If writing
there failed (a full or read-only disk), the thread draining the pipe used to die, the
pipe filled, the node blocked in ``print`` and the run crashed. Here a failed write
drops the line, counts it and tells the runner once (it prints one warning); writes
are tried again at most once a second, so logging resumes when room comes back. A
file that reaches ``max_bytes`` becomes ``log_<node>.txt.1`` (older ones shift to
``.2`` ... ``.<backups>``, the oldest is deleted), so a chatty node cannot fill the
disk. See docs/scale-and-logs.md.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dora_zenoh import settings

DEFAULT_MAX_BYTES = settings.LOG_MAX_BYTES.default  # per file
DEFAULT_BACKUPS = settings.LOG_BACKUPS.default  # rotated files kept besides the current one: 48 MiB per node
RETRY_S = 1.0  # after a failed write, lines are dropped without trying for this long


@dataclass
class LogLimits:
    """How big a node's log may grow: ``max_bytes`` per file, ``backups`` older files kept
    (0: the file is emptied when full). ``max_bytes`` 0 means no limit."""

    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS

    @classmethod
    def from_env(cls) -> LogLimits:
        """The limits in ``$DORA_ZENOH_LOG_MAX_BYTES`` / ``$DORA_ZENOH_LOG_BACKUPS``, else the
        defaults (also, after a warning, for a malformed value: logs must not stop a run)."""
        return cls(settings.LOG_MAX_BYTES.get_or_default(), settings.LOG_BACKUPS.get_or_default())


class NodeLog:
    """Append-only, rotating, failure-proof log of one node. Not thread-safe: the runner
    writes under its log lock."""

    def __init__(self, path: Path, append: bool, limits: LogLimits | None = None,
                 on_drop: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.limits = limits or LogLimits()
        self.dropped = 0  # lines that could not be written
        self.closed = False
        self._on_drop = on_drop
        self._told = False
        self._retry_at = 0.0
        self._file: IO[bytes] | None = None
        self._size = 0
        self._open("ab" if append else "wb")

    def _open(self, mode: str) -> None:
        try:
            self._file = open(self.path, mode, buffering=0)  # noqa: SIM115 - closed in close()
            self._size = self._file.seek(0, os.SEEK_END)
        except OSError as exc:
            self._file = None
            self._failed(exc)

    def write(self, line: str) -> None:
        """Write one line (without its newline). Never raises."""
        if self.closed:
            return
        data = (line + "\n").encode("utf-8", errors="replace")
        if self._file is None or self._retry_at:
            if time.monotonic() < self._retry_at:
                self.dropped += 1
                return
            self._retry_at = 0.0
            if self._file is None:
                self._open("ab")
                if self._file is None:
                    self.dropped += 1
                    return
        limit = self.limits.max_bytes
        if limit and self._size and self._size + len(data) > limit:
            self._rotate()
            if self._file is None:
                self.dropped += 1
                return
        try:
            self._file.write(data)
            self._size += len(data)
        except OSError as exc:
            self.dropped += 1
            self._failed(exc)

    def _rotate(self) -> None:
        """log -> log.1 -> log.2 ...; the oldest goes. On failure, the file is truncated."""
        assert self._file is not None
        self._file.close()
        self._file = None
        backups = self.limits.backups
        try:
            if backups:
                for i in range(backups - 1, 0, -1):
                    older = self.path.with_name(f"{self.path.name}.{i}")
                    if older.exists():
                        older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        except OSError as exc:
            self._failed(exc)
        self._open("wb")

    def _failed(self, exc: OSError) -> None:
        self._retry_at = time.monotonic() + RETRY_S
        if not self._told and self._on_drop is not None:
            self._told = True
            self._on_drop(f"cannot write {self.path} ({exc.strerror or exc}); its lines are dropped and "
                          "counted until there is room again")

    def files(self) -> list[Path]:
        """The log's files, oldest first."""
        older = [self.path.with_name(f"{self.path.name}.{i}") for i in range(self.limits.backups, 0, -1)]
        return [p for p in older if p.exists()] + [self.path]

    def close(self) -> None:
        """Close the file (idempotent; never raises)."""
        if self.closed:
            return
        self.closed = True
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
