"""Declared outputs: where they are written (node, 2022 ``custom``, operators), valid ids, no repeats."""
from __future__ import annotations

from dora_zenoh.descriptor.context import Context, DataPath, NodeInfo
from dora_zenoh.descriptor.rules.ids import id_problem


def plain_outputs(ctx: Context, node: NodeInfo) -> list[str] | None:
    """Outputs of a node without operators (node and ``custom`` blocks merged); None when unknown."""
    if "outputs" in node.broken or "outputs" in node.custom_broken:
        return None
    outer = list(node.schema.outputs or []) if node.schema is not None else []
    inner = list(node.custom.outputs or []) if node.custom is not None else []
    if outer and inner:
        ctx.add(
            "outputs are given both on the node and in 'custom'",
            node.at + ("outputs",),
            node.id,
            hint="keep one 'outputs:' block",
        )
    if node.schema is None and not (node.custom and node.custom.outputs):
        return None
    return outer + [o for o in inner if o not in outer]


def check_outputs(ctx: Context, node: NodeInfo) -> None:
    """Every declared output id is valid and declared once per list."""
    groups: list[tuple[DataPath, list[str] | None]] = []
    if node.runtime:
        groups = [(op.at + ("outputs",), op.outputs) for op in node.operators]
    elif node.custom is not None and node.custom.outputs:
        groups = [(node.at + ("custom", "outputs"), list(node.custom.outputs))]
    if not node.runtime and node.schema is not None and node.schema.outputs:
        groups.append((node.at + ("outputs",), list(node.schema.outputs)))
    for at, outputs in groups:
        seen: set[str] = set()
        for k, out in enumerate(outputs or []):
            bad = id_problem(out, "output id")
            if bad:
                ctx.add(bad[0], at + (k,), node.id, hint=bad[1])
            if out in seen:
                ctx.add(f"output '{out}' is declared twice", at + (k,), node.id, hint="remove one of them")
            seen.add(out)
