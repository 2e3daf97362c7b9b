"""The JSON form of an Arrow value, for Foxglove: plots and raw-message panels read JSON channels.

Only types whose JSON form is obvious get one: numbers, booleans, strings, lists and
structs of those. A single value becomes ``{"value": x}``, several ``{"value": [..]}`` (Foxglove
needs an object at the top). Anything else (binary, temporal, dictionary...) has no JSON
channel: ``None``.
"""
from __future__ import annotations

import json
import math
from typing import Any

from dora_zenoh.wire import codec as wire


def _obvious(kind: Any) -> bool:
    pa = wire.pyarrow()
    t = pa.types
    if t.is_integer(kind) or t.is_floating(kind) or t.is_boolean(kind) or t.is_string(kind) \
            or t.is_large_string(kind) or t.is_null(kind):
        return True
    if t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        return _obvious(kind.value_type)
    if t.is_struct(kind):
        return all(_obvious(kind.field(i).type) for i in range(kind.num_fields))
    return False


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def json_form(payload: bytes) -> bytes | None:
    """The JSON message of an Arrow IPC payload, or None when its type has no obvious JSON form."""
    pa = wire.pyarrow()
    if pa is None:
        return None
    try:
        array = wire.to_arrow(payload, True)
    except Exception:  # not a readable Arrow stream: no JSON form, the raw channel still has it
        return None
    if not _obvious(array.type):
        return None
    values = _clean(array.to_pylist())
    return json.dumps({"value": values[0] if len(values) == 1 else values}).encode()


def json_schema() -> bytes:
    """A permissive JSON schema for those messages (Foxglove wants one per JSON channel)."""
    return json.dumps({"type": "object", "properties": {"value": {}}}).encode()
