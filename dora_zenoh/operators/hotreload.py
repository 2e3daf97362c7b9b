"""Watching operator files for ``dora-zenoh run --hot-reload``.

A thread stats each watched file every ``interval`` seconds (0.5 s by default) and
reports a file once its signature (inode, size, mtime in ns) differs from the last
one reported *and* has held still for one interval, so a file still being written
is not loaded half-way. The inode is part of the signature because many editors
save by writing a new file and renaming it over the old one; while the name is
briefly missing nothing is reported.

Why polling and not inotify (e.g. the watchdog package): a handful of ``stat`` calls
twice a second costs nothing measurable, works on every OS and file system
(including network and container mounts, where inotify is unreliable) and needs no
new dependency. The thread only *reports*; the runtime applies reloads between
handler calls, on its own thread, so an operator is never entered twice at once.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable

Signature = tuple[int, int, int, int]


def signature(path: str) -> Signature | None:
    """What identifies one version of a file, or None while it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileWatcher(threading.Thread):
    """Polls ``paths``; :meth:`changed` returns the files that changed since the last call."""

    def __init__(self, paths: Iterable[str], interval: float = 0.5) -> None:
        super().__init__(name="dora-zenoh-hot-reload", daemon=True)
        self.interval = interval
        self._known = {p: signature(p) for p in paths}
        self._candidate: dict[str, Signature] = {}
        self._changed: list[str] = []
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """One round of stats (public so tests and callers can drive it directly)."""
        for path, known in self._known.items():
            sig = signature(path)
            if sig is None or sig == known:
                self._candidate.pop(path, None)
                continue
            if self._candidate.get(path) == sig:  # changed, and still for one interval: done
                del self._candidate[path]
                self._known[path] = sig
                with self._lock:
                    if path not in self._changed:
                        self._changed.append(path)
            else:
                self._candidate[path] = sig

    def changed(self) -> list[str]:
        """The files that changed since the last call (each once)."""
        with self._lock:
            out, self._changed = self._changed, []
        return out

    def stop(self) -> None:
        self._stop_event.set()
