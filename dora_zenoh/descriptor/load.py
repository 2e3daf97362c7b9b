"""Load a dataflow file: read the YAML, check its structure and meaning, resolve every node.

``load_descriptor`` either returns a :class:`Descriptor` in which every node is
fully resolved (command line, environment, inputs with normalised sources) or
raises :class:`DescriptorError` carrying *every* problem found, each with file,
line, node id, a message and, where we can offer one, a hint. A user fixing a
dataflow should see the whole list in one go instead of one error per run, and
should never see a Python traceback.

How it works, and why:

1. The YAML is composed with line information (:mod:`.yaml_lines`), giving plain
   data plus a map from a path such as ``("nodes", 2, "inputs", "tick")`` to a line.
2. The *structure* is checked with the pydantic models of :mod:`.schema`, node by
   node, operator by operator, input by input (:mod:`.rules.structure`), so that one
   broken input does not hide the problems of its neighbours.
3. The *meaning* is checked in plain code afterwards (:mod:`.rules`, :mod:`.host`):
   ids, references between nodes, timers, paths on disk, ``send_stdout_as``...
   These checks need the whole dataflow at once, which a per-field validator cannot see.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from dora_zenoh.descriptor.context import Context, NodeInfo
from dora_zenoh.descriptor.model import (
    Descriptor,
    Problem,
    ResolvedNode,
)
from dora_zenoh.descriptor.rules import commands, ids, outputs, stdout
from dora_zenoh.descriptor.rules.affinity import cpu_affinity
from dora_zenoh.descriptor.rules.deploy import deploy
from dora_zenoh.descriptor.rules.env import node_env
from dora_zenoh.descriptor.rules.inputs import resolve_input
from dora_zenoh.descriptor.rules.operators import resolve_runtime
from dora_zenoh.descriptor.rules.prefix import key_prefix
from dora_zenoh.descriptor.rules.structure import collect_node, validate
from dora_zenoh.descriptor.schema import TopSchema
from dora_zenoh.descriptor.yaml_lines import load_yaml_with_lines
from dora_zenoh.errors import DescriptorError

__all__ = ["check_file", "load_descriptor"]


def _check(ctx: Context) -> Descriptor | None:
    """Every check on the file of ``ctx``; the descriptor when no problem was found."""
    data = _read(ctx)
    if data is None:
        return None
    top, _ = validate(ctx, TopSchema, data, (), None)
    prefix = key_prefix(ctx, top)
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list):
        return None
    if not raw_nodes:
        ctx.add("the dataflow has no nodes", ("nodes",), hint="list nodes under 'nodes:', each starting with '- id: ...'")
        return None
    nodes = [n for i, raw in enumerate(raw_nodes) if (n := collect_node(ctx, i, raw)) is not None]
    registry: dict[str, NodeInfo] = {}
    for node in nodes:
        if node.id is None:
            continue
        ids.check_node_id(ctx, node, registry)
        outputs.check_outputs(ctx, node)
        ids.check_operator_ids(ctx, node)
    resolved = [_resolve(ctx, n, registry) for n in nodes]
    if ctx.problems:
        return None
    if len(resolved) != len(raw_nodes) or None in resolved:  # every drop must come with a problem
        raise RuntimeError("a node was dropped without a reported problem")
    return Descriptor(
        path=ctx.path,
        base_dir=ctx.base_dir,
        prefix=prefix,
        name=top.name if top is not None else None,
        raw=data,
        nodes=[r for r in resolved if r is not None],
        secure=top.secure if top is not None else None,
    )


def _read(ctx: Context) -> dict[str, Any] | None:
    """The file's data if it is a YAML mapping (``ctx.doc`` gets its lines); None after a problem."""
    if not ctx.path.exists():
        ctx.add(
            "file not found",
            None,
            hint=f"the path is taken relative to the current folder, {os.getcwd()}",
        )
        return None
    if ctx.path.is_dir():
        ctx.add("is a folder, not a dataflow file", None, hint="give the path of the .yml file")
        return None
    try:
        text = ctx.path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        ctx.add(f"is not UTF-8 text ({exc.reason} at byte {exc.start})", None)
        return None
    except OSError as exc:
        ctx.add(f"cannot be read: {exc.strerror or exc}", None)
        return None
    try:
        ctx.doc = load_yaml_with_lines(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context == "while scanning a simple key" and exc.context_mark is not None:
            mark = exc.context_mark  # the key missing its ':' is the line to fix, not the next one
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if mark is not None:
            message += f" (column {mark.column + 1})"
        hint = None
        if "\\t" in str(exc.problem):
            hint = "YAML does not allow tabs for indentation; use spaces"
        elif exc.context == "while scanning a simple key":
            hint = "a key needs a ':' after it, as in 'path: node.py'"
        elif exc.context and exc.context_mark is not None:
            hint = f"{exc.context} started at line {exc.context_mark.line + 1}"
        ctx.add(message, None, hint=hint, line=mark.line + 1 if mark else None)
        return None
    except yaml.YAMLError as exc:
        ctx.add(f"YAML syntax error: {exc}", None)
        return None
    for issue in ctx.doc.issues:
        ctx.add(issue.message, None, hint=issue.hint, line=issue.line)
    data = ctx.doc.data
    if data is None:
        ctx.add("the file is empty", None, hint="a dataflow needs at least a 'nodes:' list", line=None)
        return None
    if not isinstance(data, dict):
        ctx.add(
            f"the top level must be a mapping with a 'nodes:' key, not a {type(data).__name__}",
            (),
            hint="start the file with 'nodes:'",
        )
        return None
    return data


def _resolve(ctx: Context, node: NodeInfo, registry: dict[str, NodeInfo]) -> ResolvedNode | None:
    """Check the meaning of one node and resolve it; None after a problem."""
    present = commands.check_kind(ctx, node)
    if node.runtime:
        return resolve_runtime(ctx, node, registry)
    inputs = {
        input_id: resolved
        for input_id, value in node.inputs_raw.items()
        if (resolved := resolve_input(ctx, input_id, value, node.inputs_at + (input_id,), node, None, registry))
    }
    schema = node.schema
    if schema is None or len(present) != 1:
        return None
    env = node_env(node)
    kind, command = commands.command(ctx, node)
    stdout_as = stdout.check_plain_stdout(ctx, node)
    if kind is None:
        return None
    return ResolvedNode(
        id=schema.id,
        kind=kind,
        command=command,
        env=env,
        inputs=inputs,
        outputs=list(node.outputs or []),
        send_stdout_as=stdout_as,
        restart_policy=schema.restart_policy,
        max_restarts=schema.max_restarts,
        restart_delay=schema.restart_delay,
        line=ctx.line_of(node.at),
        name=schema.name,
        description=schema.description,
        deploy=deploy(ctx, node, kind),
        build=schema.build if schema.build is not None else (node.custom.build if node.custom else None),
        cpu_affinity=cpu_affinity(ctx, node, kind),
    )


def _analyse(path: str | os.PathLike[str]) -> tuple[Descriptor | None, list[Problem]]:
    ctx = Context(path)
    try:
        descriptor = _check(ctx)
    except Exception as exc:  # a bug in a check must not become a traceback for the user
        ctx.add(
            f"internal error while checking the dataflow: {type(exc).__name__}: {exc}",
            None,
            hint="this is a bug in dora-zenoh; please report it with the dataflow file",
        )
        descriptor = None
    problems = sorted(ctx.problems, key=lambda p: (p.line is not None, p.line or 0))
    return (descriptor if not problems else None), problems


def check_file(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of the dataflow file at ``path`` (empty when it is valid). Never raises for bad input."""
    return _analyse(path)[1]


def load_descriptor(path: str | os.PathLike[str]) -> Descriptor:
    """Load, validate and resolve a dataflow file.

    Relative paths in it are taken from the file's folder and ``$VAR`` in ``env``
    values is expanded from the current environment. Raises
    :class:`DescriptorError` listing every problem if the file is not usable.
    """
    descriptor, problems = _analyse(path)
    if descriptor is None:
        raise DescriptorError(problems or [Problem(str(path), None, None, "could not be loaded")], str(path))
    return descriptor
