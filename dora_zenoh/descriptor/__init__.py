"""The dataflow descriptor: one YAML file, parsed, validated and resolved into plain dataclasses.

Lowest layer above :mod:`dora_zenoh.errors`: it knows nothing of Zenoh and imports nothing
of ``tuning``, ``wire``, ``node``, ``supervision`` or ``cli``.

- :mod:`.model`: the results (:class:`Descriptor`, :class:`ResolvedNode`, :class:`Problem`...)
- :mod:`.load`: the driver (:func:`load_descriptor`, :func:`check_file`)
- :mod:`.schema`: the structure (pydantic); :mod:`.rules`: the meaning, one module per family
- :mod:`.host`: the checks that look at this machine; :mod:`.cpus`, :mod:`.timers`: pure syntax
- :mod:`.yaml_lines`: YAML with a line for every value

The names below are imported lazily: node processes import :mod:`.timers` and :mod:`.model`
and must not pay for pydantic (the schema) at start-up.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "Descriptor": "dora_zenoh.descriptor.model",
    "OperatorSpec": "dora_zenoh.descriptor.model",
    "Problem": "dora_zenoh.descriptor.model",
    "ResolvedInput": "dora_zenoh.descriptor.model",
    "ResolvedNode": "dora_zenoh.descriptor.model",
    "DescriptorError": "dora_zenoh.errors",
    "check_file": "dora_zenoh.descriptor.load",
    "load_descriptor": "dora_zenoh.descriptor.load",
}

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

if TYPE_CHECKING:  # pragma: no cover
    from dora_zenoh.descriptor.load import check_file, load_descriptor
    from dora_zenoh.descriptor.model import Descriptor, OperatorSpec, Problem, ResolvedInput, ResolvedNode
    from dora_zenoh.errors import DescriptorError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dora_zenoh.descriptor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
