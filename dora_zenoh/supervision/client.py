"""The CLI's side of the control plane (:mod:`dora_zenoh.security.ctl_client`), and whether a
coordinator runs on an endpoint."""
from __future__ import annotations

from typing import Any

from dora_zenoh.security.ctl_client import Client, ControlError, NotAuthorizedError
from dora_zenoh.wire import zconfig

__all__ = ["Client", "ControlError", "NotAuthorizedError", "coordinator_running"]


def coordinator_running(endpoint: str | None = None, timeout: float = 2.0) -> dict[str, Any] | None:
    """The coordinator's ``info`` if one answers on ``endpoint``, else None."""
    if not zconfig.tcp_port_in_use(endpoint or zconfig.default_endpoint()):
        return None
    try:
        with Client(endpoint, connect_timeout=timeout) as client:
            return client.call("info", timeout=timeout)
    except NotAuthorizedError:
        raise
    except ControlError:
        return None
