"""What a valid dataflow resolves to: plain dataclasses, and the :class:`Problem` a bad one reports.

No third-party import: node processes and the wire layer use these types, and must not
pay for the schema (pydantic) to do so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Descriptor", "NodeKind", "OperatorSpec", "Problem", "ResolvedInput", "ResolvedNode"]

#: How a node is started (see :class:`ResolvedNode`).
NodeKind = Literal["python", "exec", "shell", "dynamic", "runtime"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataflow file, written for the person who has to fix it."""

    file: str
    line: int | None
    node: str | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        if self.node:
            text += f"node '{self.node}': "
        text += self.message
        if self.hint:
            text += "\n  hint: " + self.hint
        return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class ResolvedInput:
    """One input of a node or operator, with its source normalised.

    ``source`` is the key suffix the data is published under: ``"node/out"``,
    ``"node/op/out"`` for an operator's output (also when the YAML used the short
    ``node/out`` form for a single-operator node), or the timer text verbatim
    (``"dora/timer/millis/100"``).
    """

    id: str
    source: str
    source_node: str | None
    source_output: str | None
    timer_ns: int | None = None
    queue_size: int = 10
    queue_policy: Literal["drop_oldest", "block"] = "drop_oldest"
    line: int | None = None

    @property
    def is_timer(self) -> bool:
        return self.timer_ns is not None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


@dataclass
class OperatorSpec:
    """A Python operator of a runtime node."""

    id: str
    python: Path
    inputs: dict[str, ResolvedInput] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    send_stdout_as: str | None = None
    line: int | None = None
    name: str | None = None
    description: str | None = None
    build: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = _jsonable(dataclasses.asdict(self))
        data["inputs"] = {k: v.to_dict() for k, v in self.inputs.items()}
        return data


@dataclass
class ResolvedNode:
    """A node ready to be started.

    ``kind`` says how: ``python`` / ``exec`` / ``shell`` nodes have a ready
    ``command``; ``dynamic`` nodes are started by the user; ``runtime`` nodes
    host ``operators`` and their command is built by the runner.

    For a runtime node, ``outputs`` are the operators' outputs as ``"opid/out"``
    and ``inputs`` are the operators' inputs keyed ``"opid/input"`` (so a runner
    can subscribe to a node's inputs without caring about its kind);
    ``send_stdout_as`` is normalised to ``"opid/out"`` too.
    """

    id: str
    kind: NodeKind
    command: list[str] | None
    env: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, ResolvedInput] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    operators: list[OperatorSpec] = field(default_factory=list)
    send_stdout_as: str | None = None
    restart_policy: Literal["never", "on-failure", "always"] = "never"
    max_restarts: int | None = None
    restart_delay: float | None = None
    line: int | None = None
    name: str | None = None
    description: str | None = None
    deploy: dict[str, Any] | None = None
    build: str | None = None
    cpu_affinity: list[int] | None = None

    @property
    def machine(self) -> str | None:
        """The machine id its ``deploy`` names (None: the coordinator's machine)."""
        machine = (self.deploy or {}).get("machine")
        return machine if isinstance(machine, str) else None

    @property
    def labels(self) -> dict[str, str]:
        """The daemon labels its ``deploy`` asks for, when it names no machine ({} otherwise)."""
        if self.machine is not None:
            return {}
        return dict((self.deploy or {}).get("labels") or {})

    def to_dict(self) -> dict[str, Any]:
        data = _jsonable(dataclasses.asdict(self))
        data["inputs"] = {k: v.to_dict() for k, v in self.inputs.items()}
        data["operators"] = [op.to_dict() for op in self.operators]
        return data


@dataclass
class Descriptor:
    """A fully resolved, valid dataflow."""

    path: Path
    base_dir: Path
    prefix: str
    name: str | None
    raw: dict[str, Any]
    nodes: list[ResolvedNode]
    # ``secure: true|false``: closed or open whoever starts it; unset, the starter decides (``run``:
    # open, the coordinator: closed; docs/security.md)
    secure: bool | None = None

    def node(self, node_id: str) -> ResolvedNode:
        """The node called ``node_id``; ``KeyError`` if there is none."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "base_dir": str(self.base_dir),
            "prefix": self.prefix,
            "name": self.name,
            "secure": self.secure,
            "nodes": [n.to_dict() for n in self.nodes],
        }
