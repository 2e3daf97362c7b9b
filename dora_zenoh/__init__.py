"""dora-zenoh: dora-rs's Python API on an Eclipse Zenoh data plane.

The public surface is small and re-exported here. Imports are lazy so that a
node process, which only needs :class:`Node`, does not pay for the descriptor
schema (pydantic) or the CLI (click) at start-up.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Node": "dora_zenoh.node.node",
    "Event": "dora_zenoh.node.events",
    "DoraStatus": "dora_zenoh.operators.status",
    "DoraZenohError": "dora_zenoh.errors",
    "NodeConfigError": "dora_zenoh.errors",
    "UndeclaredOutputError": "dora_zenoh.errors",
    "DescriptorError": "dora_zenoh.errors",
    "load_descriptor": "dora_zenoh.descriptor",
}

__all__ = [
    "DescriptorError",
    "DoraStatus",
    "DoraZenohError",
    "Event",
    "Node",
    "NodeConfigError",
    "UndeclaredOutputError",
    "__version__",
    "load_descriptor",
]

if TYPE_CHECKING:  # pragma: no cover
    from dora_zenoh.descriptor import load_descriptor
    from dora_zenoh.errors import DescriptorError, DoraZenohError, NodeConfigError, UndeclaredOutputError
    from dora_zenoh.node.events import Event
    from dora_zenoh.node.node import Node
    from dora_zenoh.operators.status import DoraStatus


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dora_zenoh' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
