"""Ids of nodes, operators, inputs and outputs: a strict alphabet, unique where they must be.

Ids become Zenoh key chunks and are split on '/' in input sources, hence the alphabet;
``dora`` is taken by the built-in sources (``dora/timer/...``).
"""
from __future__ import annotations

import re

from dora_zenoh.descriptor.context import Context, NodeInfo, OperatorInfo

_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_ID_HINT = "ids use letters, digits, '_', '-' and '.', and start with a letter, a digit or '_'"


def id_problem(value: str, what: str) -> tuple[str, str] | None:
    """(message, hint) when ``value`` is not a valid id, else None."""
    if _ID_RE.fullmatch(value):
        return None
    hint = _ID_HINT
    if "/" in value:
        hint = "'/' separates node, operator and output in input sources; use '_' or '-' instead"
    return f"{what} '{value}' is not a valid id", hint


def check_node_id(ctx: Context, node: NodeInfo, registry: dict[str, NodeInfo]) -> None:
    """The node's id is valid, not reserved and not taken; the first node of an id joins ``registry``."""
    assert node.id is not None
    id_at = node.at + ("id",)
    bad = id_problem(node.id, "node id")
    if bad:
        ctx.add(bad[0], id_at, node.id, hint=bad[1])
    elif node.id == "dora":
        ctx.add("node id 'dora' is reserved for timers (dora/timer/...)", id_at, node.id, hint="choose another id")
    if node.id in registry:
        first = ctx.line_of(registry[node.id].at)
        ctx.add(
            f"node id '{node.id}' is used twice",
            id_at,
            node.id,
            hint=f"the first node '{node.id}' is at line {first}; ids must be unique",
        )
    else:
        registry[node.id] = node


def check_operator_ids(ctx: Context, node: NodeInfo) -> None:
    """The ids of a node's operators are valid and unique within the node."""
    seen: dict[str, OperatorInfo] = {}
    for op in node.operators:
        if op.id is None:
            continue
        bad = id_problem(op.id, "operator id")
        if bad:
            ctx.add(bad[0], op.at + ("id",), node.id, hint=bad[1])
        if op.id in seen:
            ctx.add(
                f"operator id '{op.id}' is used twice in this node",
                op.at + ("id",),
                node.id,
                hint=f"the first one is at line {ctx.line_of(seen[op.id].at)}",
            )
        else:
            seen[op.id] = op
