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
    "NodeConfig": "dora_zenoh.wire.contract",
    "load_descriptor": "dora_zenoh.descriptor",
    "CertError": "dora_zenoh.errors",
    "CommandError": "dora_zenoh.errors",
    "ControlDirError": "dora_zenoh.errors",
    "ControlError": "dora_zenoh.errors",
    "CpuLatencyError": "dora_zenoh.errors",
    "DescriptorError": "dora_zenoh.errors",
    "DoraZenohError": "dora_zenoh.errors",
    "InsecureEndpointError": "dora_zenoh.errors",
    "LogDirError": "dora_zenoh.errors",
    "NodeClosedError": "dora_zenoh.errors",
    "NodeConfigError": "dora_zenoh.errors",
    "NodeStartError": "dora_zenoh.errors",
    "NotAuthorizedError": "dora_zenoh.errors",
    "OperatorLoadError": "dora_zenoh.errors",
    "PlacementError": "dora_zenoh.errors",
    "SecretError": "dora_zenoh.errors",
    "SettingError": "dora_zenoh.errors",
    "ShipError": "dora_zenoh.errors",
    "TlsSetupError": "dora_zenoh.errors",
    "UndeclaredOutputError": "dora_zenoh.errors",
    "UnitError": "dora_zenoh.errors",
}

__all__ = [
    "CertError",
    "CommandError",
    "ControlDirError",
    "ControlError",
    "CpuLatencyError",
    "DescriptorError",
    "DoraStatus",
    "DoraZenohError",
    "Event",
    "InsecureEndpointError",
    "LogDirError",
    "Node",
    "NodeClosedError",
    "NodeConfig",
    "NodeConfigError",
    "NodeStartError",
    "NotAuthorizedError",
    "OperatorLoadError",
    "PlacementError",
    "SecretError",
    "SettingError",
    "ShipError",
    "TlsSetupError",
    "UndeclaredOutputError",
    "UnitError",
    "__version__",
    "load_descriptor",
]

if TYPE_CHECKING:  # pragma: no cover
    from dora_zenoh.descriptor import load_descriptor
    from dora_zenoh.errors import (
        CertError,
        CommandError,
        ControlDirError,
        ControlError,
        CpuLatencyError,
        DescriptorError,
        DoraZenohError,
        InsecureEndpointError,
        LogDirError,
        NodeClosedError,
        NodeConfigError,
        NodeStartError,
        NotAuthorizedError,
        OperatorLoadError,
        PlacementError,
        SecretError,
        SettingError,
        ShipError,
        TlsSetupError,
        UndeclaredOutputError,
        UnitError,
    )
    from dora_zenoh.node.events import Event
    from dora_zenoh.node.node import Node
    from dora_zenoh.operators.status import DoraStatus
    from dora_zenoh.wire.contract import NodeConfig


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dora_zenoh' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
