"""Which machine runs which node: ``deploy: {machine: ID}``; no ``deploy`` means the coordinator's."""
from __future__ import annotations

from dora_zenoh.descriptor.model import Descriptor


def remote_nodes(desc: Descriptor) -> dict[str, list[str]]:
    """Node ids per machine id, for the nodes a daemon must run (dynamic nodes never are)."""
    placed: dict[str, list[str]] = {}
    for node in desc.nodes:
        if node.machine is not None and node.kind != "dynamic":
            placed.setdefault(node.machine, []).append(node.id)
    return placed


def local_nodes(desc: Descriptor) -> set[str]:
    """Ids of the nodes the coordinator's machine runs (dynamic ones included)."""
    return {n.id for n in desc.nodes if n.machine is None or n.kind == "dynamic"}

