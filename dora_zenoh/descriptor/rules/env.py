"""A node's environment: ``env`` merged with the 2022 ``custom`` blocks, ``$VAR`` expanded from ours.

The values themselves were made strings (or reported) by the schema (``EnvValue``).
"""
from __future__ import annotations

import os

from dora_zenoh.descriptor.context import NodeInfo


def node_env(node: NodeInfo) -> dict[str, str]:
    """Node env merged with the 2022 ``custom.env`` / ``custom.envs``; later blocks win."""
    merged: dict[str, str] = {}
    for block in (
        node.schema.env if node.schema else None,
        node.custom.env if node.custom else None,
        node.custom.envs if node.custom else None,
    ):
        merged.update(block or {})
    return {key: os.path.expandvars(value) for key, value in merged.items()}
