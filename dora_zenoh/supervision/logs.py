"""Node logs: the pumps that read a node's stdout/stderr, its log file, the echo, the line hook.

Every line a node writes goes to ``<log dir>/log_<node>.txt`` and, when echoing, to the
terminal as ``[node] line``; ``on_line`` (the coordinator's log streaming) sees each line
under the same lock as the file, so a reader of the file and a follower agree on counts.
The file is rotated by size and a failed write drops the line (counted) instead of
stopping the pump (:mod:`.logfile`); the pump also reads the node's tagged stderr lines
(:mod:`dora_zenoh.wire.stderr_tags`) that say how it ended.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from dora_zenoh.console import colour_prefix, use_colour, warn
from dora_zenoh.supervision.logfile import LogLimits, NodeLog
from dora_zenoh.wire import stderr_tags

if TYPE_CHECKING:
    from dora_zenoh.supervision.spawn import NodeProcess, StdoutPublisher

LineHook = Callable[[str, str, bool, str | None], None]  # (node id, line, is_stderr, display)

# Lines waiting for the writer thread, all nodes together; past it lines are dropped and counted.
MAX_PENDING = 20_000
DRAIN_WAIT = 5.0  # s the end of a run waits for the writer to write what is queued
_CLOSE = object()  # a queued "close this process's log" (after its last line)


class EchoOptions(Protocol):
    """What the logs read from the run's options at each line (they may change after start)."""

    echo: bool
    out: IO[str] | None
    on_line: LineHook | None


class NodeLogs:
    """Every node's log file in ``log_dir``, written and read under one lock; ``limits``
    (default: from the environment) bound each node's files."""

    def __init__(self, log_dir: Path, options: EchoOptions, limits: LogLimits | None = None) -> None:
        self.log_dir = log_dir
        self.options = options
        self.limits = limits or LogLimits.from_env()
        self.line_counts: dict[str, int] = {}  # lines written per node log
        self._lock = threading.Lock()
        self._opened: dict[str, list[NodeLog]] = {}  # per node, one per process (restarts append)
        self._warned = False
        # The pumps queue lines and a writer thread writes them: a pump that wrote itself waited
        # for the disk and the terminal, and the node's print with it (a frozen log disk or a
        # paused reader of run's output held every node's print 7-10 s: a helper's runs, 4 Dec).
        self._pending: deque = deque()
        self._ready = threading.Condition()
        self._busy = False  # the writer thread is writing an item it took
        self._skipped: dict[str, int] = {}  # lines the queue had no room for, per node
        self._writer: threading.Thread | None = None

    def path(self, node_id: str) -> Path:
        return self.log_dir / f"log_{node_id}.txt"

    def open(self, node_id: str, append: bool = False) -> NodeLog:
        """A node's log file; ``append`` for a restarted node (same file)."""
        log = NodeLog(self.path(node_id), append=append, limits=self.limits, on_drop=self._write_failed)
        with self._lock:
            self._opened.setdefault(node_id, []).append(log)
        return log

    def _write_failed(self, message: str) -> None:
        """A node log could not be written (called under the log lock): say so once per run."""
        if not self._warned:
            self._warned = True
            warn(f"{message} (this warning is not repeated for other nodes; the count comes at the end)")

    def dropped(self) -> dict[str, int]:
        """Per node: lines its log could not take (full or read-only disk, or a disk or terminal
        too slow for the writer's queue)."""
        # (not under the log lock: a writer stuck on a frozen disk holds it)
        counts = {n: sum(log.dropped for log in logs) for n, logs in list(self._opened.items())}
        with self._ready:
            for n, c in self._skipped.items():
                counts[n] = counts.get(n, 0) + c
        return {n: c for n, c in counts.items() if c}

    def write(self, proc: NodeProcess, line: str, is_stderr: bool, display: str | None) -> None:
        """Queue one line for a node's log, the echo of ``display`` and ``on_line``; never waits."""
        self._queue((proc, line, is_stderr, display))

    def close_log(self, proc: NodeProcess) -> None:
        """Close a process's log once its lines queued so far are written."""
        proc.log_closing = True
        self._queue((proc, _CLOSE, False, None))

    def drain(self, timeout: float = DRAIN_WAIT) -> None:
        """Wait (bounded) until every queued line is written; what is left then is dropped, counted."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._ready.wait(0.05)
            for proc, line, _, _ in self._pending:
                if line is not _CLOSE:
                    self._skipped[proc.node.id] = self._skipped.get(proc.node.id, 0) + 1
            self._pending.clear()

    def _queue(self, item: tuple) -> None:
        with self._ready:
            if len(self._pending) >= MAX_PENDING and item[1] is not _CLOSE:
                node_id = item[0].node.id
                self._skipped[node_id] = self._skipped.get(node_id, 0) + 1
                return
            self._pending.append(item)
            self._ready.notify_all()
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="dz-log-writer", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        warned = False
        while True:
            with self._ready:
                while not self._pending:
                    self._busy = False
                    self._ready.notify_all()  # (drain)
                    self._ready.wait()
                proc, line, is_stderr, display = self._pending.popleft()
                self._busy = True
                skipped = sum(self._skipped.values())
            if line is _CLOSE:
                with self._lock:
                    proc.log.close()
                continue
            if skipped and not warned:
                warned = True  # (said from here: the pumps must not wait for a terminal either)
                warn("node output comes faster than the log files or the terminal take it (a stalled disk, a "
                     "paused reader of this output?): lines are dropped and counted; the total comes at the end")
            self._write_now(proc, line, is_stderr, display)

    def _write_now(self, proc: NodeProcess, line: str, is_stderr: bool, display: str | None) -> None:
        """Write one line to a node's log, print ``display`` (if echoing), tell ``on_line``."""
        node_id = proc.node.id
        with self._lock:
            proc.log.write(line)
            self.line_counts[node_id] = self.line_counts.get(node_id, 0) + 1
            if display is not None and self.options.echo:
                out = self.options.out or (sys.stderr if is_stderr else sys.stdout)
                # One write with its newline: print() writes the two apart, and a line the CLI
                # printed meanwhile (its banner) landed in the middle of a node's line.
                out.write((colour_prefix(display, node_id) if use_colour(out) else display) + "\n")
                out.flush()
            if self.options.on_line is not None:
                try:
                    self.options.on_line(node_id, line, is_stderr, display)
                except Exception:  # a log follower must never break supervision
                    pass

    def read(self, node_id: str, tail: int | None = None) -> tuple[list[str], int]:
        """The last ``tail`` lines of a node's log (all if None) and how many it has in all.

        Read under the log lock, so the count matches the lines ``on_line`` has seen.
        """
        with self._lock:
            opened = self._opened.get(node_id)
            lines = []
            for path in opened[-1].files() if opened else [self.path(node_id)]:  # rotated ones first, oldest first
                try:
                    lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError:
                    pass
            count = self.line_counts.get(node_id, 0)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return lines, count


# The longest line a node's output gives the log at once: more becomes several lines. Output with
# no newline (a progress bar's "\r", binary) was one line: 200 MB of it made one log file of
# 200 MB past a 1 MiB rotation limit, and the runner's memory 1.1 GiB (a helper's run, 3 Dec).
MAX_LINE = 64 * 1024


def pump(logs: NodeLogs, proc: NodeProcess, stream: IO[bytes], is_stderr: bool,
         publisher: StdoutPublisher | None) -> None:
    """A pump thread: each line of a node's stdout or stderr to its log (and the echo, shown
    as ``[node] line``), its stderr tail, and its stdout publisher if it has one."""
    node_id = proc.node.id
    for raw in iter(lambda: stream.readline(MAX_LINE), b""):  # a line without end is cut into pieces
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if is_stderr:
            proc.stderr_tail.append(line)
            if line.startswith(stderr_tags.LOST_TAG):  # see results.exit_outcome
                proc.supervision_lost = line[len(stderr_tags.LOST_TAG):].strip()
            elif line.startswith(stderr_tags.CLOSE_FAILED_TAG):
                proc.close_failed = line[len(stderr_tags.CLOSE_FAILED_TAG):].strip()
        logs.write(proc, line, is_stderr, f"[{node_id}] {line}")
        if publisher is not None:
            publisher.put(line)
    stream.close()
    if publisher is not None:
        publisher.finish()
