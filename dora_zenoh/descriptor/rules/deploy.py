"""``deploy: {machine: ID}`` (or dora's older ``_unstable_deploy``): which machine's daemon runs a node.

Only ``machine`` means something here; a node without it runs on the coordinator's
machine. The id is checked for shape only: whether a daemon of that id runs is a fact
of the network, asked by ``check`` and ``start`` (see :mod:`dora_zenoh.daemon`).
"""
from __future__ import annotations

import re
from typing import Any

from dora_zenoh.descriptor.context import Context, NodeInfo

MACHINE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def deploy(ctx: Context, node: NodeInfo, kind: str) -> dict[str, Any] | None:
    """The node's deploy block, if its ``machine`` is a usable id (else None, with a problem)."""
    schema = node.schema
    if schema is None:
        return None
    block = schema.deploy if schema.deploy is not None else schema.unstable_deploy
    if block is None:
        return None
    key = "deploy" if schema.deploy is not None else "_unstable_deploy"
    at = node.at + (key,)
    unknown = sorted(set(block) - {"machine", "labels", "working_dir", "local"})
    if unknown:
        ctx.add(f"{key} has unknown key(s) {', '.join(unknown)}", at, node.id,
                hint="dora-zenoh reads `machine: ID` only (the id a daemon was started with)")
        return None
    machine = block.get("machine")
    if machine is None:
        return block
    if not isinstance(machine, str) or not MACHINE_ID.match(machine):
        ctx.add(f"{key}.machine should be a machine id (letters, digits, '_', '.', '-'), not {machine!r}",
                at + ("machine",), node.id,
                hint="the id given to `dora-zenoh daemon --machine-id ID` on that machine")
        return None
    if kind == "dynamic":
        ctx.add(f"{key}.machine has no effect on a dynamic node", at + ("machine",), node.id,
                hint="you start a dynamic node yourself, wherever you like: remove it")
        return None
    return block
