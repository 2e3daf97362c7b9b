"""``build:`` of the nodes placed on this machine, run here, in the folder they will run from.

A node's build (``pip install -e .``, ``cargo build``) must run where the node runs: on the
machine's own architecture, in its own copy. The daemon runs the builds of its nodes before
any node of the dataflow starts anywhere: in a copy its cache just made (nothing was ever
built there), and whenever the start asked for builds (``start --build``). Each command's
output goes to the node's log; a failure ends the start with the machine, the node, the
command and its last lines, so the user sees why without logging into the machine.
"""
from __future__ import annotations

import collections
import subprocess
from pathlib import Path

from dora_zenoh.descriptor import Descriptor
from dora_zenoh.errors import CommandError
from dora_zenoh.supervision.build import build_steps, failure

TAIL = 15  # lines of a failed build's output in the error
MAX_LINES = 5000  # lines kept per node for its log (a chatty build must not fill the daemon's memory)


def run_builds(desc: Descriptor, nodes: set[str], machine: str, skip: set[str],
               on_done: collections.abc.Callable[[str], None] | None = None) -> dict[str, list[str]]:
    """Run the build commands of ``nodes`` (and their operators) in ``desc.base_dir``, except the
    commands in ``skip``; returns each node's build output lines. CommandError at the first failure."""
    out: dict[str, list[str]] = {}
    for who, command in build_steps(desc):
        node = who.split("/", 1)[0]
        if node not in nodes or command in skip:
            continue
        lines = out.setdefault(node, [])
        lines.append(f"[dora-zenoh] building {who} on machine '{machine}': {command}")
        tail: collections.deque[str] = collections.deque(maxlen=TAIL)
        try:
            proc = subprocess.Popen(command, shell=True, cwd=Path(desc.base_dir), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise CommandError(f"machine '{machine}': the build of '{who}' could not start: {exc}") from None
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            tail.append(f"[{who}] {line}")  # as the coordinator's own builds show them
            if len(lines) < MAX_LINES:
                lines.append(line)
        code = proc.wait()
        if code != 0:
            shown = "\n".join(f"  {line}" for line in tail) or "  (no output)"
            raise CommandError(f"machine '{machine}': {failure(who, code, command, desc.base_dir)}. "
                               f"Its last lines:\n{shown}")
        lines.append(f"[dora-zenoh] build of {who} succeeded")
        if on_done is not None:
            on_done(command)
    return out
