"""The *structure* of a dataflow file, as pydantic v2 models (the *meaning* is checked in :mod:`.rules`).

Every mapping forbids unknown keys and YAML types are not coerced (``strict``), so
``yes`` where a string is expected is a problem, not ``True``. Nodes, operators and
inputs are validated one by one by the checks (see :func:`.rules.structure.validate`),
which is why the containers below hold ``Any``.

Both dialects found in the wild are accepted by one schema: the dora 0.3+ form
(``path:``, ``operator:``, ``operators:``) and the 2022 form (``custom: {run: ...}``,
``communication: {zenoh: {prefix: ...}}``).
"""

from __future__ import annotations

import types
from collections.abc import Hashable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from dora_zenoh.descriptor.cpus import parse_cpu_list
from dora_zenoh.descriptor.limits import MAX_QUEUE_SIZE


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
    fail_fast: bool | None = None  # a node failing for good stops the dataflow (`run --fail-fast`)


class InputSchema(_Schema):
    """The long input form; the short ``name: node/output`` form is turned into it first."""

    source: str
    queue_size: int = Field(10, ge=1, le=MAX_QUEUE_SIZE)
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
UNSUPPORTED_KEYS = {
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


def schema_at(schema: type[BaseModel], path: tuple[Hashable, ...]) -> type[BaseModel] | None:
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


def keys_of(schema: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in schema.model_fields.items()]
