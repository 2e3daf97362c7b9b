"""Latency echo: send every `ping` input back on `pong`, unchanged, until `done`.

Forwarding event["value"] as received is what a relay node does; a runtime
that can forward without copying gets credit for it.
"""
from __future__ import annotations

from dora import Node


def main() -> None:
    """Echo until ping says done or the dataflow stops."""
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        if event["id"] == "done":
            break
        node.send_output("pong", event["value"])


if __name__ == "__main__":
    main()
