"""The dataflow descriptor: one YAML file, parsed, validated and resolved.

``load_descriptor`` either returns a :class:`Descriptor` in which every node is
fully resolved (command line, environment, inputs with normalised sources) or
raises :class:`DescriptorError` carrying *every* problem found, each with file,
line, node id, a message and, where we can offer one, a hint. A user fixing a
dataflow should see the whole list in one go instead of one error per run, and
should never see a Python traceback.

How it works, and why:

1. The YAML is composed with line information (:mod:`dora_zenoh.descriptor.yaml_lines`),
   giving plain data plus a map from a path such as
   ``("nodes", 2, "inputs", "tick")`` to a line number.
2. The *structure* is checked with pydantic v2 models (``extra="forbid"``,
   strict types). Pydantic's error ``loc`` tuples are mapped back onto the data
   paths, and so onto lines; an unknown key gets the nearest valid key as a
   hint. Nodes, operators and inputs are validated *one by one*, so that one
   broken input does not hide the problems of its neighbours; when a model
   fails, the offending keys are dropped and it is validated again, so the
   semantic checks can still run on the rest of it.
3. The *meaning* is checked in plain code afterwards: ids, references between
   nodes, timers, paths on disk, ``send_stdout_as``... These checks need the
   whole dataflow at once, which a per-field validator cannot see.

Both dialects found in the wild are accepted by one schema: the dora 0.3+ form
(``path:``, ``operator:``, ``operators:``) and the 2022 form (``custom: {run:
...}``, ``communication: {zenoh: {prefix: ...}}``).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import os
import re
import shlex
import shutil
import sys
import types
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError
from pydantic_core import PydanticCustomError

from dora_zenoh.descriptor.yaml_lines import LoadedYaml, load_yaml_with_lines
from dora_zenoh.errors import DoraZenohError
from dora_zenoh.tuning.affinity import format_cpu_list, parse_cpu_list, supported, unusable, usable_cpus

__all__ = [
    "Descriptor",
    "DescriptorError",
    "OperatorSpec",
    "Problem",
    "ResolvedInput",
    "ResolvedNode",
    "check_file",
    "load_descriptor",
]

DataPath = tuple[Hashable, ...]

# ---------------------------------------------------------------------------------------------
# Public result types
# ---------------------------------------------------------------------------------------------


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


class DescriptorError(DoraZenohError):
    """The dataflow file is not usable. ``problems`` lists everything that is wrong with it."""

    def __init__(self, problems: list[Problem], file: str | None = None) -> None:
        self.problems = list(problems)
        self.file = file if file is not None else (self.problems[0].file if self.problems else "dataflow")
        super().__init__(self.problems, self.file)  # keeps the exception picklable

    def __str__(self) -> str:
        count = len(self.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} found in {self.file}"
        return "\n".join([*(str(p) for p in self.problems), summary])


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
    kind: Literal["python", "exec", "shell", "dynamic", "runtime"]
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
            "nodes": [n.to_dict() for n in self.nodes],
        }


# ---------------------------------------------------------------------------------------------
# Structure: pydantic schema
# ---------------------------------------------------------------------------------------------


def _error(message: str, hint: str | None = None) -> PydanticCustomError:
    """A validation error whose text is ours; the hint travels in the error context."""
    return PydanticCustomError("dora", "{message}", {"message": message, "hint": hint})


def _args_value(value: Any) -> Any:
    """``args`` is a string split like a shell would, or a list (numbers in it made strings)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise _error("items should all be strings", "quote items that YAML reads as something else")
            items.append(str(item))
        return items
    raise _error("should be a string or a list of strings", "e.g. args: --rate 10 --verbose")


def _env_value(value: Any) -> Any:
    """Environment values end up as strings; YAML scalars are turned into their usual text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    if value is None:
        raise _error("has no value", 'write VAR: "" for an empty value')
    raise _error(
        "should be a string, a number or a boolean", "nested lists and mappings cannot be environment values"
    )


def _cpu_affinity_value(value: Any) -> Any:
    """``cpu_affinity`` is a CPU number, a list of them, or a ``taskset``-style string."""
    if value is None:
        return None
    try:
        return parse_cpu_list(value)
    except ValueError as exc:
        raise _error(str(exc), "e.g. cpu_affinity: [0, 1] or cpu_affinity: \"0-3\"") from None


def _python_tag(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "str"


Args = Annotated[str | list[str] | None, BeforeValidator(_args_value)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
CpuList = Annotated[list[int] | None, BeforeValidator(_cpu_affinity_value)]
Env = dict[str, EnvValue] | None


class _Schema(BaseModel):
    """Base of every YAML mapping: unknown keys are errors and YAML types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class ZenohSchema(_Schema):
    prefix: str | None = None


class CommunicationSchema(_Schema):
    zenoh: ZenohSchema | None = None


class TopSchema(_Schema):
    """The top level of the file. ``nodes`` items are validated one by one (see module doc)."""

    nodes: list[Any]
    name: str | None = None
    secure: bool | None = None  # dora-zenoh: a closed dataflow, as with `run --secure` (docs/security.md)
    communication: CommunicationSchema | None = None
    deploy: dict[str, Any] | None = None
    unstable_deploy: dict[str, Any] | None = Field(None, alias="_unstable_deploy")
    debug: dict[str, Any] | None = None


class InputSchema(_Schema):
    """The long input form; the short ``name: node/output`` form is turned into it first."""

    source: str
    queue_size: int = Field(10, ge=1)
    queue_policy: Literal["drop_oldest", "block"] = "drop_oldest"


class PythonSourceSchema(_Schema):
    source: str
    conda_env: str | None = None


class OperatorSchema(_Schema):
    """A single ``operator:``; its id defaults to ``op``."""

    id: str = "op"
    name: str | None = None
    description: str | None = None
    python: Annotated[
        Union[Annotated[str, Tag("str")], Annotated[PythonSourceSchema, Tag("mapping")]],  # noqa: UP007
        Discriminator(_python_tag),
    ]
    inputs: dict[str, Any] | None = None
    outputs: list[str] | None = None
    send_stdout_as: str | None = None
    build: str | None = None

    @property
    def python_path(self) -> str:
        return self.python if isinstance(self.python, str) else self.python.source


class OperatorListItemSchema(OperatorSchema):
    """An item of ``operators:``, where several operators must be told apart by id."""

    id: str


class CustomSchema(_Schema):
    """The 2022 ``custom:`` block. ``source`` is the older name of ``run``, ``envs`` of ``env``."""

    run: str | None = None
    source: str | None = None
    args: Args = None
    inputs: dict[str, Any] | None = None
    outputs: list[str] | None = None
    env: Env = None
    envs: Env = None
    build: str | None = None


class NodeSchema(_Schema):
    """A node. Inputs, ``custom`` and operators are validated by their own schemas."""

    id: str
    name: str | None = None
    description: str | None = None
    path: str | None = None
    args: Args = None
    env: Env = None
    build: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: list[str] | None = None
    operator: dict[str, Any] | None = None
    operators: list[dict[str, Any]] | None = None
    custom: dict[str, Any] | None = None
    send_stdout_as: str | None = None
    deploy: dict[str, Any] | None = None
    unstable_deploy: dict[str, Any] | None = Field(None, alias="_unstable_deploy")
    restart_policy: Literal["never", "on-failure", "always"] = "never"
    max_restarts: int | None = Field(None, ge=0)
    restart_delay: float | None = Field(None, ge=0)
    cpu_affinity: CpuList = None


#: Keys that are valid somewhere in dora-rs but mean nothing here: say so instead of "did you mean".
_UNSUPPORTED_KEYS = {
    "shared-library": "dora-zenoh runs Python operators only",
    "wasm": "dora-zenoh runs Python operators only",
    "iceoryx": "dora-zenoh always communicates over Zenoh; remove this key",
    "_unstable_local": "dora-zenoh always communicates over Zenoh; remove this key",
    "_unstable_remote": "dora-zenoh always communicates over Zenoh; remove this key",
}


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types inside ``Annotated``/``Optional``/``Union`` wrappers."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _schema_at(schema: type[BaseModel], path: DataPath) -> type[BaseModel] | None:
    """The schema model that validates the mapping found at ``path`` below ``schema``."""
    candidates: list[Any] = [schema]
    for step in path:
        following = []
        for tp in (t for candidate in candidates for t in _unwrap(candidate)):
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(step, str):
                following += [f.annotation for n, f in tp.model_fields.items() if (f.alias or n) == step]
            elif get_origin(tp) is list and isinstance(step, int):
                following.append(get_args(tp)[0])
            elif get_origin(tp) is dict and isinstance(step, str):
                following.append(get_args(tp)[1])
        candidates = following
    for tp in (t for candidate in candidates for t in _unwrap(candidate)):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


def _keys_of(schema: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in schema.model_fields.items()]


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

#: Ids become Zenoh key chunks and are split on '/' in input sources, hence the strict alphabet.
_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_ID_HINT = "ids use letters, digits, '_', '-' and '.', and start with a letter, a digit or '_'"
_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")
_TIMER_NS = {"millis": 1_000_000, "secs": 1_000_000_000, "hz": None}
_TIMER_HINT = "timers are written dora/timer/millis/N, dora/timer/secs/N or dora/timer/hz/N"
_NODE_KINDS = ("path", "custom", "operator", "operators")


def _did_you_mean(word: str, choices: list[str], listing: str = "") -> str | None:
    """'did you mean ...?' for a close match, else the list of choices (prefixed by ``listing``)."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if choices and listing:
        return f"{listing}: {', '.join(choices)}"
    return None


def _dotted(path: DataPath) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else ("." if text else "") + str(step)
    return text


def _id_problem(value: str, what: str) -> tuple[str, str] | None:
    """(message, hint) when ``value`` is not a valid id, else None."""
    if _ID_RE.fullmatch(value):
        return None
    hint = _ID_HINT
    if "/" in value:
        hint = "'/' separates node, operator and output in input sources; use '_' or '-' instead"
    return f"{what} '{value}' is not a valid id", hint


def _split_args(args: str | list[str] | None) -> list[str]:
    """``args`` as a list. Raises ValueError for unbalanced quotes."""
    if args is None:
        return []
    if isinstance(args, list):
        return list(args)
    return shlex.split(args)


# ---------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------


@dataclass
class _Operator:
    """What the checks need to know about one operator of a node."""

    id: str | None
    at: DataPath
    schema: OperatorSchema | None
    outputs: list[str] | None  # None: unknown because the declaration is broken

    @property
    def name(self) -> str:
        """How problems name the operator: its id, or its place when it has none."""
        return self.id if self.id is not None else _dotted(self.at[2:])


@dataclass
class _Node:
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
    operators: list[_Operator] = field(default_factory=list)
    inputs_raw: dict[str, Any] = field(default_factory=dict)
    inputs_at: DataPath = ()

    def operator(self, op_id: str) -> _Operator | None:
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


class _Checker:
    """Runs every check on one file and collects the problems."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.label = str(path)
        self.path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        self.base_dir = self.path.parent
        self.problems: list[Problem] = []
        self.doc = LoadedYaml(data=None)

    # -- reporting ---------------------------------------------------------------------------

    def add(
        self,
        message: str,
        at: DataPath | None = (),
        node: str | None = None,
        hint: str | None = None,
        line: int | None = None,
    ) -> None:
        if line is None and at is not None and self.doc.lines:
            line = self.doc.line_of(at)
        problem = Problem(self.label, line, node, message, hint)
        if problem not in self.problems:
            self.problems.append(problem)

    def validate(
        self, schema: type[BaseModel], data: Any, at: DataPath, node: str | None
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
            self._report_pydantic(schema, data, at, node, err)
        broken = {err["loc"][0] for err in errors if err["loc"]}
        if not isinstance(data, dict) or not broken:
            return None, broken
        try:
            return schema.model_validate({k: v for k, v in data.items() if k not in broken}), broken
        except ValidationError:
            return None, broken

    def _report_pydantic(
        self, schema: type[BaseModel], data: Any, at: DataPath, node: str | None, err: Any
    ) -> None:
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
            where = _dotted(node_rel)
            message = f"missing required key '{key}'" + (f" in {where}" if where else "")
        elif kind == "extra_forbidden":
            key = str(rel[-1]) if rel else str(err["loc"][-1])
            parent = node_rel[:-1] if rel else node_rel
            where = _dotted(parent)
            message = f"unknown key '{key}'" + (f" in {where}" if where else "")
            hint = _UNSUPPORTED_KEYS.get(key)
            if hint is None:
                model = _schema_at(schema, tuple(rel[:-1]))
                if model is not None:
                    hint = _did_you_mean(key, _keys_of(model), "valid keys are")
        else:
            where = _dotted(node_rel) or "value"
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
                message = f"{where} {text}"
        self.add(message, full, node, hint)

    # -- the whole file ----------------------------------------------------------------------

    def run(self) -> Descriptor | None:
        data = self._read()
        if data is None:
            return None
        top, _ = self.validate(TopSchema, data, (), None)
        prefix = self._prefix(top)
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list):
            return None
        if not raw_nodes:
            self.add(
                "the dataflow has no nodes",
                ("nodes",),
                hint="list nodes under 'nodes:', each starting with '- id: ...'",
            )
            return None
        nodes = [self._collect(i, raw) for i, raw in enumerate(raw_nodes)]
        known = [n for n in nodes if n is not None]
        registry = self._check_ids(known)
        resolved = [self._resolve(n, registry) for n in known]
        if self.problems:
            return None
        if len(resolved) != len(raw_nodes) or None in resolved:  # every drop must come with a problem
            raise RuntimeError("a node was dropped without a reported problem")
        return Descriptor(
            path=self.path,
            base_dir=self.base_dir,
            prefix=prefix,
            name=top.name if top is not None else None,
            raw=data,
            nodes=[r for r in resolved if r is not None],
        )

    def _read(self) -> dict[str, Any] | None:
        if not self.path.exists():
            self.add(
                "file not found",
                None,
                hint=f"the path is taken relative to the current folder, {os.getcwd()}",
            )
            return None
        if self.path.is_dir():
            self.add("is a folder, not a dataflow file", None, hint="give the path of the .yml file")
            return None
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            self.add(f"is not UTF-8 text ({exc.reason} at byte {exc.start})", None)
            return None
        except OSError as exc:
            self.add(f"cannot be read: {exc.strerror or exc}", None)
            return None
        try:
            self.doc = load_yaml_with_lines(text)
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
            self.add(message, None, hint=hint, line=mark.line + 1 if mark else None)
            return None
        except yaml.YAMLError as exc:
            self.add(f"YAML syntax error: {exc}", None)
            return None
        for issue in self.doc.issues:
            self.add(issue.message, None, hint=issue.hint, line=issue.line)
        data = self.doc.data
        if data is None:
            self.add("the file is empty", None, hint="a dataflow needs at least a 'nodes:' list", line=None)
            return None
        if not isinstance(data, dict):
            self.add(
                f"the top level must be a mapping with a 'nodes:' key, not a {type(data).__name__}",
                (),
                hint="start the file with 'nodes:'",
            )
            return None
        return data

    def _prefix(self, top: TopSchema | None) -> str:
        """The first key chunk, from the 2022 ``communication: {zenoh: {prefix: ...}}``."""
        if top is None or top.communication is None or top.communication.zenoh is None:
            return "dora"
        prefix = (top.communication.zenoh.prefix or "").strip("/")
        if not prefix:
            return "dora"
        at = ("communication", "zenoh", "prefix")
        hint = "the prefix starts every Zenoh key of the dataflow, e.g. 'foo' or 'lab/robot1'"
        for chunk in prefix.split("/"):
            if not chunk:
                self.add(f"prefix '{prefix}' has an empty chunk ('//')", at, hint=hint)
            elif any(c in chunk for c in "*$?#"):
                self.add(
                    f"prefix '{prefix}' contains a Zenoh special character (*, $, ? or #)", at, hint=hint
                )
            elif chunk.startswith("@"):
                self.add(
                    f"prefix '{prefix}' has a chunk starting with '@', which Zenoh reserves", at, hint=hint
                )
            else:
                continue
            break
        return prefix

    # -- per node: structure -----------------------------------------------------------------

    def _collect(self, index: int, raw: Any) -> _Node | None:
        at: DataPath = ("nodes", index)
        if not isinstance(raw, dict):
            self.add(
                "each entry of 'nodes' must be a mapping", at, hint="start each node with '- id: <name>'"
            )
            return None
        raw_id = raw.get("id")
        label = raw_id if isinstance(raw_id, str) else None
        schema, broken = self.validate(NodeSchema, raw, at, label)
        node = _Node(index, at, schema.id if schema is not None else None, schema, broken)

        if isinstance(raw.get("custom"), dict):
            node.custom, node.custom_broken = self.validate(
                CustomSchema, raw["custom"], at + ("custom",), label
            )
        ops: list[tuple[DataPath, Any, type[OperatorSchema]]] = []
        if isinstance(raw.get("operator"), dict):
            ops.append((at + ("operator",), raw["operator"], OperatorSchema))
        if isinstance(raw.get("operators"), list):
            ops += [
                (at + ("operators", j), op, OperatorListItemSchema) for j, op in enumerate(raw["operators"])
            ]
        node.runtime = raw.get("operator") is not None or raw.get("operators") is not None
        for op_at, op_raw, op_schema in ops:
            op, op_broken = self.validate(op_schema, op_raw, op_at, label)
            if op is None:
                # Only a missing/bad id makes the repaired operator fail: check the rest of it
                # anyway (without an id nothing can reference it, so its outputs stay unknown).
                fallback: OperatorSchema | None = None
                if isinstance(op_raw, dict):
                    healthy = {k: v for k, v in op_raw.items() if k not in op_broken and k != "id"}
                    try:
                        fallback = OperatorSchema.model_validate(healthy)
                    except ValidationError:
                        pass
                node.operators.append(_Operator(None, op_at, fallback, None))
                continue
            outputs = None if "outputs" in op_broken else list(op.outputs or [])
            node.operators.append(_Operator(op.id, op_at, op, outputs))

        if not node.runtime:
            node.outputs = self._plain_outputs(node)
        inputs_at = at + ("inputs",)
        if node.custom is not None and node.custom.inputs:
            if schema is not None and schema.inputs:
                self.add(
                    "inputs are given both on the node and in 'custom'",
                    inputs_at,
                    label,
                    hint="keep one 'inputs:' block",
                )
            inputs_at = at + ("custom", "inputs")
            node.inputs_raw = dict(node.custom.inputs)
        elif schema is not None and schema.inputs:
            node.inputs_raw = dict(schema.inputs)
        elif schema is None and isinstance(raw.get("inputs"), dict):
            node.inputs_raw = dict(raw["inputs"])  # still check the inputs of a node without an id
        node.inputs_at = inputs_at
        return node

    def _plain_outputs(self, node: _Node) -> list[str] | None:
        if "outputs" in node.broken or "outputs" in node.custom_broken:
            return None
        outer = list(node.schema.outputs or []) if node.schema is not None else []
        inner = list(node.custom.outputs or []) if node.custom is not None else []
        if outer and inner:
            self.add(
                "outputs are given both on the node and in 'custom'",
                node.at + ("outputs",),
                node.id,
                hint="keep one 'outputs:' block",
            )
        if node.schema is None and not (node.custom and node.custom.outputs):
            return None
        return outer + [o for o in inner if o not in outer]

    # -- ids ---------------------------------------------------------------------------------

    def _check_ids(self, nodes: list[_Node]) -> dict[str, _Node]:
        registry: dict[str, _Node] = {}
        for node in nodes:
            if node.id is None:
                continue
            id_at = node.at + ("id",)
            bad = _id_problem(node.id, "node id")
            if bad:
                self.add(bad[0], id_at, node.id, hint=bad[1])
            elif node.id == "dora":
                self.add(
                    "node id 'dora' is reserved for timers (dora/timer/...)",
                    id_at,
                    node.id,
                    hint="choose another id",
                )
            if node.id in registry:
                first = self.doc.line_of(registry[node.id].at)
                self.add(
                    f"node id '{node.id}' is used twice",
                    id_at,
                    node.id,
                    hint=f"the first node '{node.id}' is at line {first}; ids must be unique",
                )
            else:
                registry[node.id] = node
            self._check_outputs(node)
            seen: dict[str, _Operator] = {}
            for op in node.operators:
                if op.id is None:
                    continue
                bad = _id_problem(op.id, "operator id")
                if bad:
                    self.add(bad[0], op.at + ("id",), node.id, hint=bad[1])
                if op.id in seen:
                    self.add(
                        f"operator id '{op.id}' is used twice in this node",
                        op.at + ("id",),
                        node.id,
                        hint=f"the first one is at line {self.doc.line_of(seen[op.id].at)}",
                    )
                else:
                    seen[op.id] = op
        return registry

    def _check_outputs(self, node: _Node) -> None:
        groups: list[tuple[DataPath, list[str] | None]] = []
        if node.runtime:
            groups = [(op.at + ("outputs",), op.outputs) for op in node.operators]
        elif node.custom is not None and node.custom.outputs:
            groups = [(node.at + ("custom", "outputs"), list(node.custom.outputs))]
        if not node.runtime and node.schema is not None and node.schema.outputs:
            groups.append((node.at + ("outputs",), list(node.schema.outputs)))
        for at, outputs in groups:
            seen: set[str] = set()
            for k, out in enumerate(outputs or []):
                bad = _id_problem(out, "output id")
                if bad:
                    self.add(bad[0], at + (k,), node.id, hint=bad[1])
                if out in seen:
                    self.add(
                        f"output '{out}' is declared twice", at + (k,), node.id, hint="remove one of them"
                    )
                seen.add(out)

    # -- per node: meaning -------------------------------------------------------------------

    def _resolve(self, node: _Node, registry: dict[str, _Node]) -> ResolvedNode | None:
        schema = node.schema
        label = node.id
        present = [k for k in _NODE_KINDS if k in node.broken or (schema and getattr(schema, k) is not None)]
        if schema is not None and not present:
            self.add(
                "has nothing to run",
                node.at,
                label,
                hint="give one of path, custom, operator or operators (path: dynamic for a node you start yourself)",
            )
        elif len(present) > 1:
            self.add(
                f"has both '{present[0]}' and '{present[1]}'",
                node.at + (present[1],),
                label,
                hint="a node has exactly one of path, custom, operator or operators",
            )
        if node.runtime:
            return self._resolve_runtime(node, registry)

        inputs = {
            input_id: resolved
            for input_id, value in node.inputs_raw.items()
            if (resolved := self._input(input_id, value, node.inputs_at + (input_id,), node, None, registry))
        }
        if schema is None or present == [] or len(present) > 1:
            return None
        env = self._env(node)
        kind, command = self._command(node)
        stdout_as = schema.send_stdout_as
        if stdout_as is not None and node.outputs is not None and stdout_as not in node.outputs:
            self._stdout_problem(stdout_as, node.at + ("send_stdout_as",), label, node.outputs)
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
            line=self.doc.line_of(node.at),
            name=schema.name,
            description=schema.description,
            deploy=schema.deploy if schema.deploy is not None else schema.unstable_deploy,
            build=schema.build if schema.build is not None else (node.custom.build if node.custom else None),
            cpu_affinity=self._cpu_affinity(node, kind),
        )

    def _stdout_problem(self, name: str, at: DataPath, label: str | None, outputs: list[str]) -> None:
        hint = (
            f"declared outputs: {', '.join(outputs)}" if outputs else "the node declares no outputs"
        ) + f"; add '{name}' to outputs or fix the name"
        self.add(f"send_stdout_as names '{name}', which is not one of its outputs", at, label, hint=hint)

    def _cpu_affinity(self, node: _Node, kind: str) -> list[int] | None:
        """The node's CPUs, if it asks for some this machine lets us use."""
        cpus = node.schema.cpu_affinity if node.schema else None
        if cpus is None:
            return None
        at = node.at + ("cpu_affinity",)
        if kind == "dynamic":
            self.add("cpu_affinity has no effect on a dynamic node", at, node.id,
                     hint=f"you start it, so pin it yourself: taskset -c {format_cpu_list(cpus)} <command>")
            return None
        if not supported():
            self.add(f"cpu_affinity is not supported on {sys.platform}", at, node.id,
                     hint="it needs Linux; remove it on this machine")
            return None
        missing = unusable(cpus)
        if missing:
            which = "CPU" if len(missing) == 1 else "CPUs"
            self.add(f"cpu_affinity names {which} {format_cpu_list(missing)}, which a node cannot run on here",
                     at, node.id,
                     hint=f"CPUs {format_cpu_list(usable_cpus())} are usable (online, and in this process's "
                          "cgroup); pick from those")
            return None
        return cpus

    def _env(self, node: _Node) -> dict[str, str]:
        """Node env merged with the 2022 custom env; ``$VAR`` expanded from this environment."""
        merged: dict[str, str] = {}
        for block in (
            node.schema.env if node.schema else None,
            node.custom.env if node.custom else None,
            node.custom.envs if node.custom else None,
        ):
            merged.update(block or {})
        return {key: os.path.expandvars(value) for key, value in merged.items()}

    def _command(self, node: _Node) -> tuple[str | None, list[str] | None]:
        """(kind, command) of a node with ``path`` or ``custom``; (None, None) after a problem."""
        schema = node.schema
        assert schema is not None
        label = node.id
        if schema.path is not None:
            path_at = node.at + ("path",)
            if schema.path == "dynamic":
                return "dynamic", None
            if schema.path == "shell":
                text = " ".join(schema.args) if isinstance(schema.args, list) else (schema.args or "")
                if not text.strip():
                    self.add(
                        "path: shell needs the shell commands in 'args'",
                        path_at,
                        label,
                        hint="e.g. args: echo hello && sleep 1",
                    )
                    return None, None
                return "shell", ["/bin/sh", "-c", text]
            try:
                args = _split_args(schema.args)
            except ValueError as exc:
                self.add(f"args cannot be split: {exc}", node.at + ("args",), label, hint="check the quotes")
                return None, None
            return self._program([schema.path, *args], path_at, label, python_argv0=False)

        custom = node.custom
        custom_at = node.at + ("custom",)
        if custom is None:
            return None, None
        if custom.run is not None and custom.source is not None:
            self.add(
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
                self.add(
                    "custom needs 'run', the command line that starts the node",
                    custom_at,
                    label,
                    hint="e.g. run: python printer.py",
                )
            return None, None
        try:
            argv = shlex.split(run) + _split_args(custom.args)
        except ValueError as exc:
            self.add(
                f"custom {key} cannot be split: {exc}", custom_at + (key,), label, hint="check the quotes"
            )
            return None, None
        if not argv:
            self.add(f"custom {key} is empty", custom_at + (key,), label, hint="e.g. run: python printer.py")
            return None, None
        return self._program(argv, custom_at + (key,), label, python_argv0=True)

    def _program(
        self, argv: list[str], at: DataPath, label: str | None, python_argv0: bool
    ) -> tuple[str | None, list[str] | None]:
        """Resolve a command line whose first word is a script, an interpreter or a program."""
        program, rest = argv[0], argv[1:]
        what = "program" if python_argv0 else "path"  # a 2022 `run:` is a command line, not a path
        if program.endswith(".py"):
            script = self._existing_file(program, at, label, "script" if python_argv0 else "path")
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
                    script = self._existing_file(arg, at, label, "script")
                    if script is None:
                        return None, None
                    rest[i] = script
                break
            return "python", [sys.executable, "-u", *rest]
        resolved = self._executable(program, at, label, what)
        return ("exec", [resolved, *rest]) if resolved else (None, None)

    def _local(self, name: str) -> Path:
        path = Path(os.path.expanduser(name))
        return path if path.is_absolute() else self.base_dir / path

    def _existing_file(self, name: str, at: DataPath, label: str | None, what: str) -> str | None:
        """Absolute, resolved path of a file named relative to the dataflow folder."""
        local = self._local(name)
        if not local.is_file():
            state = "is a folder" if local.is_dir() else "does not exist"
            self.add(
                f"{what} '{name}' {state} (looked in {self.base_dir})",
                at,
                label,
                hint="relative paths are taken from the folder of the dataflow file",
            )
            return None
        return str(local.resolve())

    def _executable(self, name: str, at: DataPath, label: str | None, what: str) -> str | None:
        """Absolute path of a program: relative to the dataflow folder, else found on PATH."""
        local = self._local(name)
        if "/" in name or local.is_file():
            if not local.is_file():
                state = "is a folder" if local.is_dir() else "does not exist"
                self.add(
                    f"{what} '{name}' {state} (looked in {self.base_dir})",
                    at,
                    label,
                    hint="relative paths are taken from the folder of the dataflow file",
                )
                return None
            if not os.access(local, os.X_OK):
                self.add(f"{what} '{name}' is not executable", at, label, hint=f"chmod +x {local}")
                return None
            return os.path.abspath(local)
        found = shutil.which(name)
        if found is None:
            self.add(
                f"{what} '{name}' does not exist (looked in {self.base_dir} and on PATH)",
                at,
                label,
                hint="give a path relative to the dataflow file, or install the program",
            )
            return None
        return os.path.abspath(found)

    def _resolve_runtime(self, node: _Node, registry: dict[str, _Node]) -> ResolvedNode | None:
        schema = node.schema
        label = node.id
        for key in ("inputs", "outputs", "args"):
            if schema is not None and getattr(schema, key):
                self.add(
                    f"'{key}' has no effect on a node with operators",
                    node.at + (key,),
                    label,
                    hint=f"declare {key} on the operator" if key != "args" else "remove it",
                )
        if schema is not None and schema.operators == []:
            self.add(
                "'operators' is empty", node.at + ("operators",), label, hint="list at least one operator"
            )
        specs: list[OperatorSpec] = []
        for op in node.operators:
            if op.schema is None:
                continue
            inputs = {}
            for input_id, value in (op.schema.inputs or {}).items():
                resolved = self._input(input_id, value, op.at + ("inputs", input_id), node, op, registry)
                if resolved is not None:
                    inputs[input_id] = resolved
            script = self._existing_file(
                op.schema.python_path, op.at + ("python",), label, what=f"operator '{op.name}': python file"
            )
            stdout_as = op.schema.send_stdout_as
            if stdout_as is not None and op.outputs is not None and stdout_as not in op.outputs:
                self._stdout_problem(stdout_as, op.at + ("send_stdout_as",), label, op.outputs)
            if script is not None and op.id is not None:
                specs.append(
                    OperatorSpec(
                        id=op.schema.id,
                        python=Path(script),
                        inputs=inputs,
                        outputs=list(op.outputs or []),
                        send_stdout_as=stdout_as,
                        line=self.doc.line_of(op.at),
                        name=op.schema.name,
                        description=op.schema.description,
                        build=op.schema.build,
                    )
                )
        if schema is None:
            return None
        # The operators share one process, hence one stdout: at most one output can carry it.
        op_stdout = [
            (op, op.schema.send_stdout_as) for op in node.operators if op.schema and op.schema.send_stdout_as
        ]
        if len(op_stdout) > 1 or (op_stdout and schema.send_stdout_as is not None):
            second = op_stdout[1][0] if len(op_stdout) > 1 else op_stdout[0][0]
            self.add(
                "send_stdout_as is given more than once",
                second.at + ("send_stdout_as",),
                label,
                hint="the operators of a node share one process and one stdout; keep one send_stdout_as",
            )
        outputs = [f"{op.id}/{out}" for op in node.operators for out in op.outputs or []]
        stdout_as = schema.send_stdout_as
        if stdout_as is not None and all(op.outputs is not None for op in node.operators):
            if len(node.operators) == 1 and "/" not in stdout_as:
                stdout_as = f"{node.operators[0].id}/{stdout_as}"  # like `node/out` inputs
            if stdout_as not in outputs:
                self._stdout_problem(
                    schema.send_stdout_as or "",
                    node.at + ("send_stdout_as",),
                    label,
                    node.known_outputs() or [],
                )
        if stdout_as is None and op_stdout:
            stdout_as = f"{op_stdout[0][0].id}/{op_stdout[0][1]}"
        return ResolvedNode(
            id=schema.id,
            kind="runtime",
            command=None,
            env=self._env(node),
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
            line=self.doc.line_of(node.at),
            name=schema.name,
            description=schema.description,
            deploy=schema.deploy if schema.deploy is not None else schema.unstable_deploy,
            build=schema.build,
            cpu_affinity=self._cpu_affinity(node, "runtime"),
        )

    # -- inputs ------------------------------------------------------------------------------

    def _input(
        self,
        input_id: str,
        value: Any,
        at: DataPath,
        owner: _Node,
        op: _Operator | None,
        registry: dict[str, _Node],
    ) -> ResolvedInput | None:
        label = owner.id
        who = f"operator '{op.name}': " if op is not None else ""
        bad = _id_problem(input_id, "input id")
        if bad:
            self.add(bad[0], at, label, hint=bad[1])
        if isinstance(value, str):
            value = {"source": value}
        elif not isinstance(value, dict):
            self.add(
                f"{who}input '{input_id}' must be 'node/output' or a mapping with 'source:'",
                at,
                label,
                hint="e.g. image: camera/image, or tick: dora/timer/millis/100",
            )
            return None
        spec, _ = self.validate(InputSchema, value, at, label)
        if spec is None:
            return None
        line = self.doc.line_of(at)
        common = {"queue_size": spec.queue_size, "queue_policy": spec.queue_policy, "line": line}
        source = spec.source
        if source.startswith("dora/"):
            timer_ns = self._timer(input_id, source, at, label, who)
            if timer_ns is None:
                return None
            return ResolvedInput(input_id, source, None, None, timer_ns=timer_ns, **common)

        parts = source.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            self.add(
                f"{who}input '{input_id}' has source '{source}', which is not 'node/output'",
                at,
                label,
                hint="sources are node/output, node/operator/output or a timer; " + _TIMER_HINT,
            )
            return None
        source_id, rest = parts[0], parts[1:]
        target = registry.get(source_id)
        if target is None:
            self.add(
                f"{who}input '{input_id}' reads from node '{source_id}', which does not exist",
                at,
                label,
                hint=_did_you_mean(source_id, list(registry), "nodes of this dataflow"),
            )
            return None
        if target is owner and op is None:
            self.add(
                f"{who}input '{input_id}' reads '{source}', an output of its own node",
                at,
                label,
                hint="a node cannot receive its own output; use an internal variable or a timer",
            )
            return None

        if not target.runtime:
            if len(rest) == 2:
                self.add(
                    f"{who}input '{input_id}' names operator '{rest[0]}' of node '{source_id}', "
                    "which has no operators",
                    at,
                    label,
                    hint=f"write {source_id}/<output>" + self._outputs_hint(target),
                )
                return None
            output = rest[0]
            if target.outputs is not None and output not in target.outputs:
                self._undeclared(who, input_id, output, target, at, label)
                return None
            return ResolvedInput(input_id, source, source_id, output, **common)

        if len(rest) == 1:
            if len(target.operators) != 1:
                if target.operator(rest[0]) is not None:
                    message = f"{who}input '{input_id}' names operator '{rest[0]}' of node '{source_id}' but no output"
                else:
                    message = f"{who}input '{input_id}' must name an operator of node '{source_id}', which has several"
                self.add(
                    message,
                    at,
                    label,
                    hint=f"write {source_id}/<operator>/<output>" + self._outputs_hint(target),
                )
                return None
            target_op, output = target.operators[0], rest[0]
        else:
            target_op, output = target.operator(rest[0]), rest[1]
            if target_op is None:
                op_ids = [o.id for o in target.operators if o.id]
                self.add(
                    f"{who}input '{input_id}' names operator '{rest[0]}' of node '{source_id}', "
                    "which does not exist",
                    at,
                    label,
                    hint=_did_you_mean(rest[0], op_ids, f"operators of '{source_id}'"),
                )
                return None
        if target_op.id is None:  # broken operator, already reported
            return None
        if op is not None and target is owner and target_op is op:
            self.add(
                f"{who}input '{input_id}' reads its own output '{output}'",
                at,
                label,
                hint="an operator cannot receive its own output; use an internal variable or a timer",
            )
            return None
        if target_op.outputs is not None and output not in target_op.outputs:
            self._undeclared(
                who, input_id, output, target, at, label, target_op.id if len(target.operators) > 1 else None
            )
            return None
        source_output = f"{target_op.id}/{output}"
        return ResolvedInput(input_id, f"{source_id}/{source_output}", source_id, source_output, **common)

    @staticmethod
    def _outputs_hint(target: _Node) -> str:
        outputs = list(dict.fromkeys(target.known_outputs() or []))
        return f"; declared outputs of '{target.id}': {', '.join(outputs)}" if outputs else ""

    def _undeclared(
        self,
        who: str,
        input_id: str,
        output: str,
        target: _Node,
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
        self.add(
            f"{who}input '{input_id}' names output '{shown}' of node '{target.id}', which it does not declare",
            at,
            label,
            hint=hint,
        )

    def _timer(self, input_id: str, source: str, at: DataPath, label: str | None, who: str) -> int | None:
        """Period in nanoseconds of a ``dora/timer/<unit>/<N>`` source, or None after a problem."""
        parts = source.split("/")
        if len(parts) != 4 or parts[1] != "timer":
            self.add(
                f"{who}input '{input_id}' has unknown built-in source '{source}'", at, label, hint=_TIMER_HINT
            )
            return None
        unit, amount = parts[2], parts[3]
        if unit not in _TIMER_NS:
            close = _did_you_mean(unit, list(_TIMER_NS))
            self.add(
                f"{who}input '{input_id}' has unknown timer unit '{unit}' in '{source}'",
                at,
                label,
                hint=(close + " " if close else "") + _TIMER_HINT,
            )
            return None
        if unit == "hz":
            try:
                rate = float(amount)
            except ValueError:
                rate = math.nan
            if not math.isfinite(rate):
                self.add(
                    f"{who}input '{input_id}': timer frequency '{amount}' is not a number",
                    at,
                    label,
                    hint="e.g. dora/timer/hz/30",
                )
                return None
            if rate <= 0:
                self.add(
                    f"{who}input '{input_id}': timer frequency must be positive, not {amount}",
                    at,
                    label,
                    hint="e.g. dora/timer/hz/30",
                )
                return None
            return max(1, round(1e9 / rate))
        if not re.fullmatch(r"[+-]?\d+", amount):
            self.add(
                f"{who}input '{input_id}': timer period '{amount}' is not a whole number",
                at,
                label,
                hint=f"e.g. dora/timer/{unit}/100",
            )
            return None
        period = int(amount)
        if period <= 0:
            self.add(
                f"{who}input '{input_id}': timer period must be positive, not {amount}",
                at,
                label,
                hint=f"e.g. dora/timer/{unit}/100",
            )
            return None
        ns = _TIMER_NS[unit]
        assert ns is not None
        return period * ns


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def _analyse(path: str | os.PathLike[str]) -> tuple[Descriptor | None, list[Problem]]:
    checker = _Checker(path)
    try:
        descriptor = checker.run()
    except Exception as exc:  # a bug in the checker must not become a traceback for the user
        checker.add(
            f"internal error while checking the dataflow: {type(exc).__name__}: {exc}",
            None,
            hint="this is a bug in dora-zenoh; please report it with the dataflow file",
        )
        descriptor = None
    problems = sorted(checker.problems, key=lambda p: (p.line is not None, p.line or 0))
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
