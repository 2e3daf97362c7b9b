"""Runtime nodes: a node with ``operator:`` or ``operators:`` hosts Python operators in one process.

Inputs and outputs are declared on the operators, not on the node; the resolved node
lists them as ``"opid/input"`` / ``"opid/out"`` so a runner can treat every node alike.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import dora_zenoh.descriptor.host as host
from dora_zenoh.descriptor.context import Context, NodeInfo, OperatorInfo
from dora_zenoh.descriptor.model import OperatorSpec, ResolvedNode
from dora_zenoh.descriptor.rules.affinity import cpu_affinity
from dora_zenoh.descriptor.rules.deploy import deploy
from dora_zenoh.descriptor.rules.env import node_env
from dora_zenoh.descriptor.rules.inputs import resolve_input
from dora_zenoh.descriptor.rules.stdout import check_operator_stdout, runtime_stdout


def resolve_runtime(ctx: Context, node: NodeInfo, registry: dict[str, NodeInfo]) -> ResolvedNode | None:
    """Check a node with operators and resolve it; None after a problem."""
    schema = node.schema
    label = node.id
    for key in ("inputs", "outputs", "args"):
        if schema is not None and getattr(schema, key):
            ctx.add(
                f"'{key}' has no effect on a node with operators",
                node.at + (key,),
                label,
                hint=f"declare {key} on the operator" if key != "args" else "remove it",
            )
    if schema is not None and schema.operators == []:
        ctx.add("'operators' is empty", node.at + ("operators",), label, hint="list at least one operator")
    specs = [spec for op in node.operators if (spec := _operator(ctx, node, op, registry)) is not None]
    if schema is None:
        return None
    outputs = [f"{op.id}/{out}" for op in node.operators for out in op.outputs or []]
    stdout_as = runtime_stdout(ctx, node, outputs)
    return ResolvedNode(
        id=schema.id,
        kind="runtime",
        command=None,
        env=node_env(node),
        inputs={
            f"{spec.id}/{k}": dataclasses.replace(v, id=f"{spec.id}/{k}")
            for spec in specs
            for k, v in spec.inputs.items()
        },
        outputs=outputs,
        operators=specs,
        send_stdout_as=stdout_as,
        restart_policy=schema.restart_policy,
        max_restarts=schema.max_restarts,
        restart_delay=schema.restart_delay,
        line=ctx.line_of(node.at),
        name=schema.name,
        description=schema.description,
        deploy=deploy(ctx, node, "runtime"),
        build=schema.build,
        cpu_affinity=cpu_affinity(ctx, node, "runtime"),
    )


def _operator(
    ctx: Context, node: NodeInfo, op: OperatorInfo, registry: dict[str, NodeInfo]
) -> OperatorSpec | None:
    """Check one operator (inputs, python file, stdout) and resolve it; None after a problem."""
    if op.schema is None:
        return None
    inputs = {}
    for input_id, value in (op.schema.inputs or {}).items():
        resolved = resolve_input(ctx, input_id, value, op.at + ("inputs", input_id), node, op, registry)
        if resolved is not None:
            inputs[input_id] = resolved
    script = host.existing_file(
        ctx, op.schema.python_path, op.at + ("python",), node.id, what=f"operator '{op.name}': python file"
    )
    stdout_as = check_operator_stdout(ctx, node, op)
    if script is None or op.id is None:
        return None
    return OperatorSpec(
        id=op.schema.id,
        python=Path(script),
        inputs=inputs,
        outputs=list(op.outputs or []),
        send_stdout_as=stdout_as,
        line=ctx.line_of(op.at),
        name=op.schema.name,
        description=op.schema.description,
        build=op.schema.build,
    )
