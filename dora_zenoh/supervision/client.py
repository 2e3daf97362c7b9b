"""The CLI's side of the control plane (:mod:`dora_zenoh.security.ctl_client`), and whether a
coordinator runs on an endpoint."""
from __future__ import annotations

from typing import Any

from dora_zenoh.security.ctl_client import Client, ControlError, NotAuthorizedError, ask

__all__ = ["Client", "ControlError", "NotAuthorizedError", "coordinator_running", "daemon_here"]


def coordinator_running(endpoint: str | None = None, timeout: float = 2.0) -> dict[str, Any] | None:
    """The coordinator's ``info`` if one answers on ``endpoint``, else None."""
    return ask(endpoint, "info", timeout=timeout, connect_timeout=timeout)


def daemon_here(endpoint: str | None = None, timeout: float = 2.0) -> str | None:
    """The machine id of this machine's daemon when it, not the coordinator on ``endpoint``,
    answers here (the coordinator runs on another machine: daemon.desk), else None."""
    reply = ask(endpoint, "desk", timeout=timeout, connect_timeout=timeout)
    return str(reply["machine"]) if reply and reply.get("machine") else None
