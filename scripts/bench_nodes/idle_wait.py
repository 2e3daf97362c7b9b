"""Idle probe: wait for inputs and do nothing with them.

Wired to an input that never comes (`waiter`) or to a slow timer (`ticker`),
it shows what a runtime spends while a node waits. It writes READY_FILE once
Node() has returned, so the harness measures only the idle part.

Environment: READY_FILE.
"""
from __future__ import annotations

import os

from dora import Node


def main() -> None:
    """Announce readiness, then block in the event loop until STOP."""
    node = Node()
    with open(os.environ["READY_FILE"], "w") as f:
        f.write("ready")
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
