"""Startup probe, source: send one message right after Node() and finish.

Both runtimes promise that a message sent once Node() has returned reaches
every subscriber, so one message is enough; if it is lost the harness reports
the nodes that never got a first input.
"""
from __future__ import annotations

from dora import Node


def main() -> None:
    """Send a single `go` and exit."""
    node = Node()
    node.send_output("go", b"go")


if __name__ == "__main__":
    main()
