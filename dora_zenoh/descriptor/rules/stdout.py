"""``send_stdout_as``: a node's (or operator's) printed lines published as one of its declared outputs.

The operators of a runtime node share one process, hence one stdout: at most one
``send_stdout_as`` per node, normalised to ``"opid/out"``.
"""
from __future__ import annotations

from dora_zenoh.descriptor.context import Context, DataPath, NodeInfo, OperatorInfo


def stdout_problem(ctx: Context, name: str, at: DataPath, label: str | None, outputs: list[str]) -> None:
    """Report a ``send_stdout_as`` naming something that is not among ``outputs``."""
    hint = (
        f"declared outputs: {', '.join(outputs)}" if outputs else "the node declares no outputs"
    ) + f"; add '{name}' to outputs or fix the name"
    ctx.add(f"send_stdout_as names '{name}', which is not one of its outputs", at, label, hint=hint)


def check_plain_stdout(ctx: Context, node: NodeInfo) -> str | None:
    """The ``send_stdout_as`` of a node without operators (reported when it is not an output)."""
    assert node.schema is not None
    stdout_as = node.schema.send_stdout_as
    if stdout_as is not None and node.outputs is not None and stdout_as not in node.outputs:
        stdout_problem(ctx, stdout_as, node.at + ("send_stdout_as",), node.id, node.outputs)
    return stdout_as


def check_operator_stdout(ctx: Context, node: NodeInfo, op: OperatorInfo) -> str | None:
    """An operator's own ``send_stdout_as`` (reported when it is not one of its outputs)."""
    stdout_as = op.schema.send_stdout_as if op.schema is not None else None
    if stdout_as is not None and op.outputs is not None and stdout_as not in op.outputs:
        stdout_problem(ctx, stdout_as, op.at + ("send_stdout_as",), node.id, op.outputs)
    return stdout_as


def runtime_stdout(ctx: Context, node: NodeInfo, outputs: list[str]) -> str | None:
    """The one ``"opid/out"`` a runtime node's stdout goes to, from the node or one of its operators.

    ``outputs`` are the node's outputs as ``"opid/out"``.
    """
    schema = node.schema
    assert schema is not None
    op_stdout = [
        (op, op.schema.send_stdout_as) for op in node.operators if op.schema and op.schema.send_stdout_as
    ]
    if len(op_stdout) > 1 or (op_stdout and schema.send_stdout_as is not None):
        second = op_stdout[1][0] if len(op_stdout) > 1 else op_stdout[0][0]
        ctx.add(
            "send_stdout_as is given more than once",
            second.at + ("send_stdout_as",),
            node.id,
            hint="the operators of a node share one process and one stdout; keep one send_stdout_as",
        )
    stdout_as = schema.send_stdout_as
    if stdout_as is not None and all(op.outputs is not None for op in node.operators):
        if len(node.operators) == 1 and "/" not in stdout_as:
            stdout_as = f"{node.operators[0].id}/{stdout_as}"  # like `node/out` inputs
        if stdout_as not in outputs:
            stdout_problem(
                ctx, schema.send_stdout_as or "", node.at + ("send_stdout_as",), node.id, node.known_outputs() or []
            )
    if stdout_as is None and op_stdout:
        stdout_as = f"{op_stdout[0][0].id}/{op_stdout[0][1]}"
    return stdout_as
