"""How a node without operators is started: exactly one kind (``path``/``custom``/...), and its command line.

``path:`` is a script, a program or one of the words ``dynamic`` / ``shell``; the 2022
``custom: {run: ...}`` is a whole command line. ``args`` are split like a shell would.
A ``.py`` file, or ``python x.py`` in a 2022 dataflow, runs with this interpreter,
unbuffered; anything else must be an executable file or a program on PATH.
"""
from __future__ import annotations

import re
import shlex
import sys

import dora_zenoh.descriptor.host as host
from dora_zenoh.descriptor.context import Context, DataPath, NodeInfo
from dora_zenoh.descriptor.model import NodeKind

_NODE_KINDS = ("path", "custom", "operator", "operators")
_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")

#: (kind, command line) of a node; (None, None) after a problem.
Command = tuple[NodeKind | None, list[str] | None]


def check_kind(ctx: Context, node: NodeInfo) -> list[str]:
    """The keys saying how to run the node (path, custom, operator, operators); one is required."""
    schema = node.schema
    present = [k for k in _NODE_KINDS if k in node.broken or (schema and getattr(schema, k) is not None)]
    if schema is not None and not present:
        ctx.add(
            "has nothing to run",
            node.at,
            node.id,
            hint="give one of path, custom, operator or operators (path: dynamic for a node you start yourself)",
        )
    elif len(present) > 1:
        ctx.add(
            f"has both '{present[0]}' and '{present[1]}'",
            node.at + (present[1],),
            node.id,
            hint="a node has exactly one of path, custom, operator or operators",
        )
    return present


def split_args(args: str | list[str] | None) -> list[str]:
    """``args`` as a list. Raises ValueError for unbalanced quotes."""
    if args is None:
        return []
    if isinstance(args, list):
        return list(args)
    return shlex.split(args)


def command(ctx: Context, node: NodeInfo) -> Command:
    """(kind, command) of a node with ``path`` or ``custom``; (None, None) after a problem."""
    schema = node.schema
    assert schema is not None
    if schema.path is not None:
        return _path_command(ctx, node)
    return _custom_command(ctx, node)


def _path_command(ctx: Context, node: NodeInfo) -> Command:
    schema = node.schema
    assert schema is not None and schema.path is not None
    label, path_at = node.id, node.at + ("path",)
    if schema.path == "dynamic":
        return "dynamic", None
    if schema.path == "shell":
        text = " ".join(schema.args) if isinstance(schema.args, list) else (schema.args or "")
        if not text.strip():
            ctx.add(
                "path: shell needs the shell commands in 'args'",
                path_at,
                label,
                hint="e.g. args: echo hello && sleep 1",
            )
            return None, None
        return "shell", ["/bin/sh", "-c", text]
    try:
        args = split_args(schema.args)
    except ValueError as exc:
        ctx.add(f"args cannot be split: {exc}", node.at + ("args",), label, hint="check the quotes")
        return None, None
    return _program(ctx, [schema.path, *args], path_at, label, python_argv0=False)


def _custom_command(ctx: Context, node: NodeInfo) -> Command:
    """The 2022 ``custom:`` block: ``run`` (or its old name ``source``) plus ``args``."""
    custom, label = node.custom, node.id
    custom_at = node.at + ("custom",)
    if custom is None:
        return None, None
    if custom.run is not None and custom.source is not None:
        ctx.add(
            "custom has both 'run' and 'source'",
            custom_at + ("source",),
            label,
            hint="'source' is the old name of 'run'; keep one",
        )
        return None, None
    run = custom.run if custom.run is not None else custom.source
    key = "run" if custom.run is not None else "source"
    if run is None:
        if not ({"run", "source"} & node.custom_broken):
            ctx.add(
                "custom needs 'run', the command line that starts the node",
                custom_at,
                label,
                hint="e.g. run: python printer.py",
            )
        return None, None
    try:
        argv = shlex.split(run) + split_args(custom.args)
    except ValueError as exc:
        ctx.add(f"custom {key} cannot be split: {exc}", custom_at + (key,), label, hint="check the quotes")
        return None, None
    if not argv:
        ctx.add(f"custom {key} is empty", custom_at + (key,), label, hint="e.g. run: python printer.py")
        return None, None
    return _program(ctx, argv, custom_at + (key,), label, python_argv0=True)


def _program(ctx: Context, argv: list[str], at: DataPath, label: str | None, python_argv0: bool) -> Command:
    """Resolve a command line whose first word is a script, an interpreter or a program."""
    program, rest = argv[0], argv[1:]
    what = "program" if python_argv0 else "path"  # a 2022 `run:` is a command line, not a path
    if program.endswith(".py"):
        script = host.existing_file(ctx, program, at, label, "script" if python_argv0 else "path")
        return ("python", [sys.executable, "-u", script, *rest]) if script else (None, None)
    if python_argv0 and _PYTHON_RE.match(program):
        # `python x.py` in a 2022 dataflow: run it with our interpreter, unbuffered.
        rest = list(rest)
        for i, arg in enumerate(rest):
            if arg in ("-m", "-c"):
                break
            if arg.startswith("-"):
                continue
            if arg.endswith(".py"):
                script = host.existing_file(ctx, arg, at, label, "script")
                if script is None:
                    return None, None
                rest[i] = script
            break
        return "python", [sys.executable, "-u", *rest]
    resolved = host.executable(ctx, program, at, label, what)
    return ("exec", [resolved, *rest]) if resolved else (None, None)
