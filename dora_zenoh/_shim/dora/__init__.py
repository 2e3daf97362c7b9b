"""The `dora` module that node processes started by dora-zenoh see.

dora-zenoh puts this folder on the PYTHONPATH of the nodes it starts, so a script
written for dora-rs (`from dora import Node`) runs unchanged, without a package
named `dora` in the user's environment.
"""
from dora_zenoh import DoraStatus, Node  # noqa: F401

__all__ = ["Node", "DoraStatus"]
