"""Named exceptions, one hierarchy: every error dora-zenoh raises on purpose derives from
:class:`DoraZenohError`, so a caller can catch them all, and every message is written for
the person who has to fix the problem.

The lowest layer: it imports nothing of dora-zenoh, so every module may raise these.
The old import paths (``dora_zenoh.supervision.client.ControlError``, ...) still work.
"""
from __future__ import annotations

from typing import Any


class DoraZenohError(Exception):
    """Base class of every error dora-zenoh raises on purpose."""


class DescriptorError(DoraZenohError):
    """The dataflow file is not usable. ``problems`` lists everything that is wrong with it.

    The items are :class:`dora_zenoh.descriptor.model.Problem` (typed loosely here: this base
    module imports nothing of the package).
    """

    def __init__(self, problems: list[Any], file: str | None = None) -> None:
        self.problems = list(problems)
        self.file = file if file is not None else (self.problems[0].file if self.problems else "dataflow")
        super().__init__(self.problems, self.file)  # keeps the exception picklable

    def __str__(self) -> str:
        count = len(self.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} found in {self.file}"
        return "\n".join([*(str(p) for p in self.problems), summary])


# -- a node and its configuration -----------------------------------------------------------
class NodeConfigError(DoraZenohError):
    """A node could not configure itself (no runner environment, unknown node id, bad config)."""


class UndeclaredOutputError(DoraZenohError, KeyError):
    """`send_output` was called with an output id the descriptor does not declare, in strict mode
    (``DORA_ZENOH_STRICT_OUTPUTS=1`` or ``node.strict_outputs = True``); otherwise, as in dora-rs,
    the message is dropped with a warning."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


# -- operators ------------------------------------------------------------------------------
class OperatorLoadError(DoraZenohError):
    """An operator file could not be turned into a running operator (the message says why)."""


# -- tuning ---------------------------------------------------------------------------------
class CpuLatencyError(DoraZenohError):
    """The CPU wake-up latency request could not be made (no device, no permission, bad value)."""


# -- supervision ----------------------------------------------------------------------------
class NodeClosedError(DoraZenohError, RuntimeError):
    """`send_output` on a node after its ``close()`` (or its exit): its Zenoh session is gone,
    so nothing more can be sent."""


class NodeStartError(DoraZenohError, RuntimeError):
    """A node's process could not be started (its command is missing or not executable).

    Also a RuntimeError, which it was before it had a name, so older handlers still catch it."""


class LogDirError(DoraZenohError):
    """No directory could be created for a run's logs."""


class SettingError(DoraZenohError, ValueError):
    """An environment variable of dora-zenoh's that cannot be read (``dora_zenoh.settings``):
    the message names it, its value and the fix. Also a ValueError, as before it had a name."""


class UnitError(DoraZenohError, ValueError):
    """A duration or size that cannot be read (``dora_zenoh.units``)."""


class PlacementError(DoraZenohError):
    """No connected daemon has the labels a node's ``deploy.labels`` asks for."""


class CommandError(DoraZenohError):
    """A command the coordinator refuses; the message goes back to the user as is."""


class ControlError(DoraZenohError):
    """The coordinator refused a command, or no coordinator answered."""


# -- security (docs/security.md) ------------------------------------------------------------
class NotAuthorizedError(ControlError):
    """This Unix user may not operate that coordinator, or may not use a file or folder named in
    a command (the coordinator checks paths as the requester)."""


class ControlDirError(DoraZenohError):
    """The coordinator's control directory exists but cannot be trusted, or its group is unusable."""


class TlsSetupError(DoraZenohError):
    """Certificates missing, unreadable, mismatched, or refused by the other side."""


class InsecureEndpointError(DoraZenohError):
    """A network endpoint without TLS, and the user did not opt out."""


class SecretError(DoraZenohError):
    """The credentials file of a closed dataflow is missing or malformed."""


class CertError(DoraZenohError):
    """A certificate could not be made (missing CA, bad name or address, file exists)."""


class ShipError(DoraZenohError):
    """A dataflow's folder could not be shipped to a machine (too big, a file that changed or did
    not arrive whole); the message names the file and the fix."""


__all__ = [
    "CertError",
    "CommandError",
    "ControlDirError",
    "ControlError",
    "CpuLatencyError",
    "DescriptorError",
    "DoraZenohError",
    "InsecureEndpointError",
    "LogDirError",
    "NodeClosedError",
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
]
