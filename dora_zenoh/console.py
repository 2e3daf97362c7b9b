"""The one way dora-zenoh's own processes talk to the person watching: tagged lines on stderr/stdout.

Every line starts with ``[dora-zenoh]`` so it stands apart from a node's own output in a log.
"""
from __future__ import annotations

import sys
from typing import TextIO


def say(line: str, stream: TextIO | None = None) -> None:
    """Print one line (stderr by default); a stream that cannot take it is not our caller's problem.

    A node's stderr is a pipe to its runner: once the runner died, every write raised
    BrokenPipeError, and the node's own reaction to that death (a line, then STOP) raised
    before its STOP, so it ran on until the reaper killed it (4 Dec).
    """
    try:
        print(line, file=sys.stderr if stream is None else stream, flush=True)
    except (OSError, ValueError):  # a closed pipe, a full disk, a closed file
        pass


def warn(message: str) -> None:
    """A problem the process survives (a dropped message, a malformed setting)."""
    say(f"[dora-zenoh] warning: {message}")


def note(message: str, err: bool = True) -> None:
    """A fact worth a line (a node restarting, an operator stopping)."""
    say(f"[dora-zenoh] {message}", sys.stderr if err else sys.stdout)


def error(message: str) -> None:
    """A failure the process reports before it exits non-zero."""
    say(f"[dora-zenoh] error: {message}")


# Six colours readable on dark and light terminals (no blue-on-black): red, green, yellow,
# magenta, cyan, and bright blue; a node keeps its colour from run to run (hash of its id).
_PALETTE = ("31", "32", "33", "35", "36", "94")


def use_colour(stream: object) -> bool:
    """Colour only for a person: a terminal, and neither ``NO_COLOR`` (no-color.org) nor ``TERM=dumb``."""
    import os

    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def colour_prefix(line: str, node_id: str) -> str:
    """``[node] text`` with ``[node]`` in the node's colour."""
    tag = f"[{node_id}]"
    if not line.startswith(tag):
        return line
    import zlib

    code = _PALETTE[zlib.crc32(node_id.encode()) % len(_PALETTE)]
    return f"\x1b[{code}m{tag}\x1b[0m{line[len(tag):]}"
