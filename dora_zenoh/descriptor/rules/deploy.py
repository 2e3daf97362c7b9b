"""``deploy: {machine: ID}`` or ``deploy: {labels: {k: v}}`` (or dora's older ``_unstable_deploy``):
which machine's daemon runs a node.

``machine`` names the machine; ``labels`` (dora 1.x) ask for any machine whose daemon was
started with those labels (``daemon --labels k=v``), and ``machine`` wins when both are given,
as in dora. A node with neither runs on the coordinator's machine. Ids and labels are checked
for shape only: which daemons run is a fact of the network, asked by ``check`` and ``start``
(see :mod:`dora_zenoh.descriptor.placement`).
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
    if "labels" in block:
        labels = _labels(ctx, node, key, block["labels"])
        if labels is None:
            return None
        block = {**block, "labels": labels}
    if machine is None:
        if block.get("labels") and kind == "dynamic":
            ctx.add(f"{key}.labels has no effect on a dynamic node", at + ("labels",), node.id,
                    hint="you start a dynamic node yourself, wherever you like: remove it")
            return None
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


def _labels(ctx: Context, node: NodeInfo, key: str, labels: Any) -> dict[str, str] | None:
    """``labels`` as text (``gpu: true`` means ``gpu=true``, as ``daemon --labels`` says it)."""
    at = node.at + (key, "labels")
    if not isinstance(labels, dict):
        ctx.add(f"{key}.labels should be a mapping of label: value, not {labels!r}", at, node.id,
                hint='e.g. labels: {gpu: "true"}, matched against `dora-zenoh daemon --labels gpu=true`')
        return None
    out: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not LABEL.match(name) or not isinstance(value, str | int | float | bool) \
                or not LABEL.match(text := label_text(value)):
            ctx.add(f"{key}.labels: {name!r}: {value!r} is not a label (letters, digits, '_', '.', '-', '/')",
                    at + (str(name),), node.id, hint='e.g. gpu: "true" or arch: arm64')
            return None
        out[name] = text
    return out


LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


def label_text(value: str | int | float | bool) -> str:
    """A label's value as a daemon's ``--labels k=v`` gives it: YAML's ``true`` is ``true``."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
