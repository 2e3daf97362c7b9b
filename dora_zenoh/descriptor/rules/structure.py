"""Structure: pydantic's verdict turned into problems with lines, and the per-node view the other rules use.

Pydantic's error ``loc`` tuples are mapped back onto the data paths, and so onto lines;
an unknown key gets the nearest valid key as a hint. When a model fails, the offending
keys are dropped and it is validated again, so the rules of meaning can still run on
the rest of it.
"""
from __future__ import annotations

import datetime
from collections.abc import Hashable
from typing import Any

from pydantic import BaseModel, ValidationError

from dora_zenoh.descriptor.context import Context, DataPath, NodeInfo, OperatorInfo, did_you_mean, dotted
from dora_zenoh.descriptor.rules.outputs import plain_outputs
from dora_zenoh.descriptor.schema import (
    UNSUPPORTED_KEYS,
    CustomSchema,
    NodeSchema,
    OperatorListItemSchema,
    OperatorSchema,
    keys_of,
    schema_at,
)


def validate(
    ctx: Context, schema: type[BaseModel], data: Any, at: DataPath, node: str | None
) -> tuple[Any, set[Hashable]]:
    """Validate ``data`` (found at ``at``) and report every error.

    Returns ``(model, broken_keys)``. On failure the keys named by the errors
    are dropped and the rest validated again, so later checks can still look
    at the healthy part; the model is None only if that fails too.
    """
    try:
        return schema.model_validate(data), set()
    except ValidationError as exc:
        errors = exc.errors()
    for err in errors:
        _report(ctx, schema, data, at, node, err)
    broken: set[Hashable] = {err["loc"][0] for err in errors if err["loc"]}
    if not isinstance(data, dict) or not broken:
        return None, broken
    try:
        return schema.model_validate({k: v for k, v in data.items() if k not in broken}), broken
    except ValidationError:
        return None, broken


def _report(ctx: Context, schema: type[BaseModel], data: Any, at: DataPath, node: str | None, err: Any) -> None:
    """One pydantic error as a problem: the line of the value, our wording, a hint where we have one."""
    # Keep only the loc steps that exist in the data: the others are pydantic's own
    # (union tags, "[key]", validator names) and have no line in the file.
    rel: list[Hashable] = []
    current = data
    for step in err["loc"]:
        if isinstance(current, dict) and isinstance(step, str) and step in current:
            rel.append(step)
            current = current[step]
        elif isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current):
            rel.append(step)
            current = current[step]
    full = at + tuple(rel)
    # Inside a node, the node is named by the problem, so paths are shown relative to it.
    is_in_node = full[:1] == ("nodes",) and len(full) >= 2 and isinstance(full[1], int)
    node_rel = full[2:] if is_in_node else full
    kind = err["type"]
    hint = None
    if kind == "missing":
        key = err["loc"][-1]
        where = dotted(node_rel)
        message = f"missing required key '{key}'" + (f" in {where}" if where else "")
    elif kind == "extra_forbidden":
        key = str(rel[-1]) if rel else str(err["loc"][-1])
        parent = node_rel[:-1] if rel else node_rel
        where = dotted(parent)
        message = f"unknown key '{key}'" + (f" in {where}" if where else "")
        hint = UNSUPPORTED_KEYS.get(key)
        if hint is None:
            model = schema_at(schema, tuple(rel[:-1]))
            if model is not None:
                hint = did_you_mean(key, keys_of(model), "valid keys are")
    else:
        where = dotted(node_rel) or "value"
        text = err["msg"]
        if kind == "dora":
            hint = (err.get("ctx") or {}).get("hint")
            message = f"{where} {text}"  # our texts read as a predicate: "env.A has no value"
        else:
            text = text.replace("Input should", "should", 1)
            got = err.get("input")
            if isinstance(got, (str, int, float, bool)) or got is None:
                text += f" (got {got!r})"
            if kind == "string_type" and isinstance(got, (bool, int, float, datetime.date)):
                # YAML 1.1 reads yes/no/on/off as booleans and 2024-01-01 as a date.
                read_as = (
                    "a boolean"
                    if isinstance(got, bool)
                    else "a date"
                    if isinstance(got, datetime.date)
                    else "a number"
                )
                hint = f"YAML reads this value as {read_as}; put it in quotes"
            elif kind == "dict_type" and rel and rel[-1] in ("deploy", "_unstable_deploy") and isinstance(got, str):
                hint = f"a machine is written `{rel[-1]}: {{machine: {got}}}`"
            message = f"{where} {text}"
    ctx.add(message, full, node, hint)


def collect_node(ctx: Context, index: int, raw: Any) -> NodeInfo | None:
    """Validate the structure of ``nodes[index]`` (node, ``custom``, each operator) into a :class:`NodeInfo`."""
    at: DataPath = ("nodes", index)
    if not isinstance(raw, dict):
        ctx.add("each entry of 'nodes' must be a mapping", at, hint="start each node with '- id: <name>'")
        return None
    raw_id = raw.get("id")
    label = raw_id if isinstance(raw_id, str) else None
    schema, broken = validate(ctx, NodeSchema, raw, at, label)
    node = NodeInfo(index, at, schema.id if schema is not None else None, schema, broken)

    if isinstance(raw.get("custom"), dict):
        node.custom, node.custom_broken = validate(ctx, CustomSchema, raw["custom"], at + ("custom",), label)
    ops: list[tuple[DataPath, Any, type[OperatorSchema]]] = []
    if isinstance(raw.get("operator"), dict):
        ops.append((at + ("operator",), raw["operator"], OperatorSchema))
    if isinstance(raw.get("operators"), list):
        ops += [(at + ("operators", j), op, OperatorListItemSchema) for j, op in enumerate(raw["operators"])]
    node.runtime = raw.get("operator") is not None or raw.get("operators") is not None
    for op_at, op_raw, op_schema in ops:
        node.operators.append(_collect_operator(ctx, op_at, op_raw, op_schema, label))

    if not node.runtime:
        node.outputs = plain_outputs(ctx, node)
    inputs_at = at + ("inputs",)
    if node.custom is not None and node.custom.inputs:
        if schema is not None and schema.inputs:
            ctx.add(
                "inputs are given both on the node and in 'custom'", inputs_at, label, hint="keep one 'inputs:' block"
            )
        inputs_at = at + ("custom", "inputs")
        node.inputs_raw = dict(node.custom.inputs)
    elif schema is not None and schema.inputs:
        node.inputs_raw = dict(schema.inputs)
    elif schema is None and isinstance(raw.get("inputs"), dict):
        node.inputs_raw = dict(raw["inputs"])  # still check the inputs of a node without an id
    node.inputs_at = inputs_at
    return node


def _collect_operator(
    ctx: Context, at: DataPath, raw: Any, schema: type[OperatorSchema], label: str | None
) -> OperatorInfo:
    op, broken = validate(ctx, schema, raw, at, label)
    if op is None:
        # Only a missing/bad id makes the repaired operator fail: check the rest of it
        # anyway (without an id nothing can reference it, so its outputs stay unknown).
        fallback: OperatorSchema | None = None
        if isinstance(raw, dict):
            healthy = {k: v for k, v in raw.items() if k not in broken and k != "id"}
            try:
                fallback = OperatorSchema.model_validate(healthy)
            except ValidationError:
                pass
        return OperatorInfo(None, at, fallback, None)
    outputs = None if "outputs" in broken else list(op.outputs or [])
    return OperatorInfo(op.id, at, op, outputs)
