"""Named exceptions. Every message is written for the person who has to fix the problem."""
from __future__ import annotations


class DoraZenohError(Exception):
    """Base class of every error dora-zenoh raises on purpose."""


class NodeConfigError(DoraZenohError):
    """A node could not configure itself (no runner environment, unknown node id, bad config)."""


class UndeclaredOutputError(DoraZenohError, KeyError):
    """`send_output` was called with an output id the descriptor does not declare."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class LogDirError(DoraZenohError):
    """No directory could be created for a run's logs."""


class UnitError(DoraZenohError, ValueError):
    """A duration or size that cannot be read (``dora_zenoh.units``)."""


class NodeStartError(DoraZenohError, RuntimeError):
    """A node's process could not be started (its program is missing or not executable)."""
