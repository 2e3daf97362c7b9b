"""The one way dora-zenoh's own processes talk to the person watching: tagged lines on stderr/stdout.

Every line starts with ``[dora-zenoh]`` so it stands apart from a node's own output in a log.
"""
from __future__ import annotations

import sys


def warn(message: str) -> None:
    """A problem the process survives (a dropped message, a malformed setting)."""
    print(f"[dora-zenoh] warning: {message}", file=sys.stderr, flush=True)


def note(message: str, err: bool = True) -> None:
    """A fact worth a line (a node restarting, an operator stopping)."""
    print(f"[dora-zenoh] {message}", file=sys.stderr if err else sys.stdout, flush=True)


def error(message: str) -> None:
    """A failure the process reports before it exits non-zero."""
    print(f"[dora-zenoh] error: {message}", file=sys.stderr, flush=True)
