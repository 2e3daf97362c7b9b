"""A `run`'s dataflow name, held by a lock file while it runs: two runs started at once on one
machine never keep the same name.

The name check over Zenoh (a liveliness query for the name's runner token) misses a run that
has not declared its token yet: of two `dora-zenoh run` of one YAML started together, both kept
the name in 1 of 20 tries (5 Dec 2026, loaded 2-core machine) and read each other's messages. An
exclusive ``flock`` on a file per (endpoint, prefix, name), in the user's own runtime directory,
settles it on this machine; the kernel drops the lock when the process ends, however it ends.
Runs of other users or machines are still told apart by the Zenoh check alone.
"""
from __future__ import annotations

import fcntl
import hashlib
import os

from dora_zenoh.errors import ControlDirError
from dora_zenoh.security.control import control_dir, own_directory


class NameLock:
    """The lock of one name, taken with :meth:`take`; released by :meth:`release` or at exit."""

    def __init__(self, endpoint: str, prefix: str, name: str) -> None:
        tag = hashlib.sha256(f"{endpoint}\0{prefix}\0{name}".encode()).hexdigest()[:16]
        self.path = control_dir(os.getuid()) / "names" / f"{tag}.lock"
        self._fd: int | None = None

    def take(self) -> bool:
        """True if the name is now ours on this machine; False if another run of ours holds it.
        A folder we cannot use (not ours: someone else made it) takes nothing and says True:
        the Zenoh check still applies."""
        try:
            own_directory(self.path.parent.parent, 0o711)  # (the user's, which a coordinator makes so too)
            own_directory(self.path.parent, 0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except (OSError, ControlDirError):
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # (the file stays: removing it could let two runs lock two different files)

