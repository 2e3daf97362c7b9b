"""``dora-zenoh build`` and ``run --build``: each node's ``build:`` command, before anything starts.

A dora-rs YAML names how to build a node (``build: pip install -e .``, ``build: cargo build``);
ignoring it would run stale code. Each command runs in the YAML's folder through the shell
(as a person would type it), one after the other in the file's order, its output prefixed
with the node's id; the first failure stops the build, and so nothing is started.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from dora_zenoh.console import colour_prefix, use_colour
from dora_zenoh.errors import DoraZenohError


class BuildError(DoraZenohError):
    """A node's build command failed (the message names the node, the command and the exit code)."""


def failure(who: str, code: int, command: str, folder: Any) -> str:
    """The one wording of a failed build, here and on a daemon's machine."""
    return f"the build of '{who}' failed (exit code {code}): `{command}` in {folder}; nothing was started"


def build_steps(desc: Any) -> list[tuple[str, str]]:
    """``(who, command)`` for every node and operator with a ``build:``, in the file's order."""
    steps = []
    for node in desc.nodes:
        if node.build:
            steps.append((node.id, node.build))
        for op in node.operators:
            if op.build:
                steps.append((f"{node.id}/{op.id}", op.build))
    return steps


def run_builds(desc: Any, echo: Callable[[str], None] | None = None, only: set[str] | None = None) -> int:
    """Run every build command (of the nodes ``only`` names, if given); returns how many ran.
    Raises BuildError at the first failure."""
    out = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    colour = echo is None and use_colour(sys.stderr)
    steps = [(who, cmd) for who, cmd in build_steps(desc) if only is None or who.split("/", 1)[0] in only]
    for who, command in steps:
        out(f"[dora-zenoh] building {who}: {command}")
        proc = subprocess.Popen(command, shell=True, cwd=desc.base_dir, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = f"[{who}] " + raw.decode("utf-8", errors="replace").rstrip("\n")
            out(colour_prefix(line, who) if colour else line)
        code = proc.wait()
        if code != 0:
            raise BuildError(failure(who, code, command, desc.base_dir))
    return len(steps)
