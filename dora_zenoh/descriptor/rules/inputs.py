"""Inputs: the short and long forms, queues, timers, and sources that must name a declared output.

A source is ``node/output``, ``node/operator/output`` (``node/output`` is enough when the
node has a single operator) or a timer. Resolved sources are normalised to the key
suffix the data is published under.
"""
from __future__ import annotations

from typing import Any

from dora_zenoh.descriptor.context import Context, DataPath, NodeInfo, OperatorInfo, did_you_mean
from dora_zenoh.descriptor.model import ResolvedInput
from dora_zenoh.descriptor.rules.ids import id_problem
from dora_zenoh.descriptor.rules.structure import validate
from dora_zenoh.descriptor.schema import InputSchema
from dora_zenoh.descriptor.timers import HINT as TIMER_HINT
from dora_zenoh.descriptor.timers import TimerError, is_timer, parse_timer


def resolve_input(
    ctx: Context,
    input_id: str,
    value: Any,
    at: DataPath,
    owner: NodeInfo,
    op: OperatorInfo | None,
    registry: dict[str, NodeInfo],
) -> ResolvedInput | None:
    """Check one input of ``owner`` (of its operator ``op``, if given); None after a problem."""
    label = owner.id
    who = f"operator '{op.name}': " if op is not None else ""
    bad = id_problem(input_id, "input id")
    if bad:
        ctx.add(bad[0], at, label, hint=bad[1])
    if isinstance(value, str):
        value = {"source": value}
    elif not isinstance(value, dict):
        ctx.add(
            f"{who}input '{input_id}' must be 'node/output' or a mapping with 'source:'",
            at,
            label,
            hint="e.g. image: camera/image, or tick: dora/timer/millis/100",
        )
        return None
    spec, _ = validate(ctx, InputSchema, value, at, label)
    if spec is None:
        return None
    common = {"queue_size": spec.queue_size, "queue_policy": spec.queue_policy, "line": ctx.line_of(at)}
    source = spec.source
    if is_timer(source):
        try:
            timer_ns = parse_timer(source)
        except TimerError as exc:
            # "unknown ..." is about the whole source ("input 't' has unknown timer unit ..."),
            # the others about its number ("input 't': timer period must be positive ...").
            joint = " has " if exc.message.startswith("unknown ") else ": "
            ctx.add(f"{who}input '{input_id}'{joint}{exc.message}", at, label, hint=exc.hint)
            return None
        return ResolvedInput(input_id, source, None, None, timer_ns=timer_ns, **common)

    parts = source.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        ctx.add(
            f"{who}input '{input_id}' has source '{source}', which is not 'node/output'",
            at,
            label,
            hint="sources are node/output, node/operator/output or a timer; " + TIMER_HINT,
        )
        return None
    source_id, rest = parts[0], parts[1:]
    target = registry.get(source_id)
    if target is None:
        ctx.add(
            f"{who}input '{input_id}' reads from node '{source_id}', which does not exist",
            at,
            label,
            hint=did_you_mean(source_id, list(registry), "nodes of this dataflow"),
        )
        return None
    if target is owner and op is None:
        ctx.add(
            f"{who}input '{input_id}' reads '{source}', an output of its own node",
            at,
            label,
            hint="a node cannot receive its own output; use an internal variable or a timer",
        )
        return None

    if not target.runtime:
        if len(rest) == 2:
            ctx.add(
                f"{who}input '{input_id}' names operator '{rest[0]}' of node '{source_id}', "
                "which has no operators",
                at,
                label,
                hint=f"write {source_id}/<output>" + _outputs_hint(target),
            )
            return None
        output = rest[0]
        if target.outputs is not None and output not in target.outputs:
            _undeclared(ctx, who, input_id, output, target, at, label)
            return None
        return ResolvedInput(input_id, source, source_id, output, **common)

    target_op: OperatorInfo | None
    if len(rest) == 1:
        if len(target.operators) != 1:
            if target.operator(rest[0]) is not None:
                message = f"{who}input '{input_id}' names operator '{rest[0]}' of node '{source_id}' but no output"
            else:
                message = f"{who}input '{input_id}' must name an operator of node '{source_id}', which has several"
            ctx.add(message, at, label, hint=f"write {source_id}/<operator>/<output>" + _outputs_hint(target))
            return None
        target_op, output = target.operators[0], rest[0]
    else:
        target_op, output = target.operator(rest[0]), rest[1]
        if target_op is None:
            op_ids = [o.id for o in target.operators if o.id]
            ctx.add(
                f"{who}input '{input_id}' names operator '{rest[0]}' of node '{source_id}', which does not exist",
                at,
                label,
                hint=did_you_mean(rest[0], op_ids, f"operators of '{source_id}'"),
            )
            return None
    if target_op.id is None:  # broken operator, already reported
        return None
    if op is not None and target is owner and target_op is op:
        ctx.add(
            f"{who}input '{input_id}' reads its own output '{output}'",
            at,
            label,
            hint="an operator cannot receive its own output; use an internal variable or a timer",
        )
        return None
    if target_op.outputs is not None and output not in target_op.outputs:
        shown_op = target_op.id if len(target.operators) > 1 else None
        _undeclared(ctx, who, input_id, output, target, at, label, shown_op)
        return None
    source_output = f"{target_op.id}/{output}"
    return ResolvedInput(input_id, f"{source_id}/{source_output}", source_id, source_output, **common)


def _outputs_hint(target: NodeInfo) -> str:
    outputs = list(dict.fromkeys(target.known_outputs() or []))
    return f"; declared outputs of '{target.id}': {', '.join(outputs)}" if outputs else ""


def _undeclared(
    ctx: Context,
    who: str,
    input_id: str,
    output: str,
    target: NodeInfo,
    at: DataPath,
    label: str | None,
    op_id: str | None = None,
) -> None:
    shown = f"{op_id}/{output}" if op_id else output
    outputs = list(dict.fromkeys(target.known_outputs() or []))
    hint = (
        f"declared outputs of '{target.id}': {', '.join(outputs)}"
        if outputs
        else f"node '{target.id}' declares no outputs"
    )
    ctx.add(
        f"{who}input '{input_id}' names output '{shown}' of node '{target.id}', which it does not declare",
        at,
        label,
        hint=hint,
    )
