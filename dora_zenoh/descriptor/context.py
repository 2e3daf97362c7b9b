"""What every check shares: the file being checked, its lines, the problems found so far.

The checks (:mod:`.rules`, :mod:`.host`) are plain functions taking a :class:`Context`
first; they report through :meth:`Context.add` and carry on, so that a user sees every
problem of a file in one go. :class:`NodeInfo` / :class:`OperatorInfo` are what the
checks know of one node after its structure was validated.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dora_zenoh.descriptor.model import Problem
from dora_zenoh.descriptor.yaml_lines import LoadedYaml

if TYPE_CHECKING:  # pragma: no cover
    from dora_zenoh.descriptor.schema import CustomSchema, NodeSchema, OperatorSchema

#: Where a value sits in the YAML data, e.g. ``("nodes", 2, "inputs", "tick")``.
DataPath = tuple[Hashable, ...]


class Context:
    """One file under check and the problems found in it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.label = str(path)  # problems name the file as the user gave it
        self.path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        self.base_dir = self.path.parent
        self.problems: list[Problem] = []
        self.doc = LoadedYaml(data=None)

    def add(
        self,
        message: str,
        at: DataPath | None = (),
        node: str | None = None,
        hint: str | None = None,
        line: int | None = None,
    ) -> None:
        """Report a problem at the data path ``at`` (its line is looked up), once."""
        if line is None and at is not None and self.doc.lines:
            line = self.doc.line_of(at)
        problem = Problem(self.label, line, node, message, hint)
        if problem not in self.problems:
            self.problems.append(problem)

    def line_of(self, at: DataPath) -> int | None:
        return self.doc.line_of(at)


@dataclass
class OperatorInfo:
    """What the checks need to know about one operator of a node."""

    id: str | None
    at: DataPath
    schema: OperatorSchema | None
    outputs: list[str] | None  # None: unknown because the declaration is broken

    @property
    def name(self) -> str:
        """How problems name the operator: its id, or its place when it has none."""
        return self.id if self.id is not None else dotted(self.at[2:])


@dataclass
class NodeInfo:
    """What the checks know about one node after structural validation."""

    index: int
    at: DataPath
    id: str | None
    schema: NodeSchema | None
    broken: set[Hashable]
    custom: CustomSchema | None = None
    custom_broken: set[Hashable] = field(default_factory=set)
    runtime: bool = False
    outputs: list[str] | None = None  # non-runtime nodes; None when unknown
    operators: list[OperatorInfo] = field(default_factory=list)
    inputs_raw: dict[str, Any] = field(default_factory=dict)
    inputs_at: DataPath = ()

    def operator(self, op_id: str) -> OperatorInfo | None:
        return next((op for op in self.operators if op.id == op_id), None)

    def known_outputs(self) -> list[str] | None:
        """Outputs as a source would name them, or None if unknown."""
        if not self.runtime:
            return self.outputs
        if any(op.outputs is None for op in self.operators):
            return None
        if len(self.operators) == 1:
            return list(self.operators[0].outputs or [])
        return [f"{op.id}/{out}" for op in self.operators for out in op.outputs or []]


def did_you_mean(word: str, choices: list[str], listing: str = "") -> str | None:
    """'did you mean ...?' for a close match, else the list of choices (prefixed by ``listing``)."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if choices and listing:
        return f"{listing}: {', '.join(choices)}"
    return None


def dotted(path: DataPath) -> str:
    """``("env", "A")`` -> ``env.A``, ``("operators", 1)`` -> ``operators[1]``: a path as problems show it."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else ("." if text else "") + str(step)
    return text
