"""The client side of the control plane: JSON queries to the coordinator over Zenoh.

A Zenoh *client* session to the coordinator's control socket (a Unix socket next to, not
on, the hub endpoint: :mod:`dora_zenoh.security.control`), found from the hub endpoint.
The kernel lets only the coordinator's user, root and its group connect; every command
carries the caller's uid for the coordinator's checks. It sits here, below the node, so
that a dynamic node can ask where a closed dataflow lives (:func:`join`).
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import zenoh

from dora_zenoh import settings
from dora_zenoh.errors import ControlError, NotAuthorizedError
from dora_zenoh.security import control
from dora_zenoh.wire import keys, zconfig

__all__ = ["Client", "ControlError", "NotAuthorizedError", "ask", "closed_dataflows", "join"]


class Client:
    """A connection to the coordinator on ``endpoint`` (a context manager)."""

    def __init__(self, endpoint: str | None = None, connect_timeout: float = 3.0) -> None:
        self.endpoint = endpoint or zconfig.default_endpoint()
        self.socket = control.locate(self.endpoint)  # NotAuthorizedError: another user's coordinator
        if not self.socket.exists():
            raise ControlError(self._unreachable())
        conf = control.session_config(connect=[control.control_endpoint(self.socket)])
        try:
            self.session = zenoh.open(conf)
        except zenoh.ZError:  # nothing listens there (Zenoh's own message names its source files)
            raise ControlError(self._unreachable()) from None
        self._claim = json.dumps({"uid": os.getuid()})
        deadline = time.monotonic() + connect_timeout
        while not (list(self.session.info.peers_zid()) or list(self.session.info.routers_zid())):
            if time.monotonic() > deadline:
                self.session.close()
                raise ControlError(self._unreachable())
            time.sleep(0.01)

    def _unreachable(self, extra: str = "") -> str:
        if zconfig.is_network_endpoint(self.endpoint) and not zconfig.on_this_machine(self.endpoint):
            if not zconfig.tcp_port_in_use(self.endpoint):
                return (f"no coordinator answers on {self.endpoint}, an address of another machine: is it running "
                        "there, and reachable from here?")
            return (f"the coordinator on {self.endpoint} runs on another machine: run its commands there. Here, "
                    "this machine's daemon answers `join`, `logs` and `list` for the dataflows with nodes on this "
                    "machine, to the daemon's user and root")
        return (f"no coordinator is running on {self.endpoint}{extra}: start one with `dora-zenoh up` "
                f"(or pass --endpoint / set {settings.ENDPOINT.name})")

    def call(self, verb: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        """Send one command; its reply as a dict. Raises ControlError with the coordinator's message."""
        payload = json.dumps({k: v for k, v in args.items() if v is not None})
        for reply in self.session.get(keys.ctl_key(verb), payload=payload, attachment=self._claim,
                                      timeout=timeout):
            if reply.ok is None:
                continue
            try:
                answer = json.loads(reply.ok.payload.to_bytes())
            except ValueError:
                continue
            if not answer.get("ok"):
                error = answer.get("error", "the coordinator refused the command")
                raise (NotAuthorizedError if error.startswith("not authorized") else ControlError)(error)
            return answer
        raise ControlError(self._unreachable() if verb == "info" else
                           f"the coordinator on {self.endpoint} did not answer '{verb}' within {timeout:g} s "
                           "(is it running? `dora-zenoh up`)")

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ask(endpoint: str | None, verb: str, timeout: float = 5.0, connect_timeout: float = 2.0,
        **args: Any) -> dict[str, Any] | None:
    """The reply of our coordinator on ``endpoint`` to ``verb``, or None when none answers there
    (nothing listens, no coordinator, or it refused the command). NotAuthorizedError (another
    user's coordinator) is left to the caller."""
    where = endpoint or zconfig.default_endpoint()
    # (on another machine than the coordinator's, its daemon's socket answers `join`: daemon.desk)
    if not zconfig.tcp_port_in_use(where) and not control.locate(where).exists():
        return None
    try:
        with Client(endpoint, connect_timeout=connect_timeout) as client:
            return client.call(verb, timeout=timeout, **args)
    except NotAuthorizedError:
        raise
    except ControlError:
        return None


def join(endpoint: str | None, dataflow: str | None, member: bool = False) -> str | None:
    """The endpoint a tool uses to reach ``dataflow``, and its credentials, when needed.

    A closed dataflow of the coordinator on ``endpoint`` lives on a network of its own:
    its owner's control socket gives its endpoint and credentials (``observer``, read-only,
    unless ``member``), which go into ``$DORA_ZENOH_SECRET_FILE`` of this process, where
    every session it opens takes them from. Anything else (an open dataflow, a ``run``,
    no coordinator, credentials set already) leaves ``endpoint`` as it was.
    """
    if not dataflow or settings.SECRET_FILE.get():
        return endpoint
    try:
        where = ask(endpoint, "join", target=dataflow)
    except NotAuthorizedError:  # another user's coordinator: nothing of ours to join
        return endpoint
    if where is None or not where.get("closed"):  # none, no such dataflow, or an open one
        return endpoint
    os.environ[settings.SECRET_FILE.name] = where["credentials" if member else "observer"]
    return str(where["endpoint"])


def closed_dataflows(endpoint: str | None) -> list[str]:
    """The running closed dataflows of our coordinator on ``endpoint`` (none if there is none):
    a tool that looks at every dataflow of the hub does not see these, and says so."""
    if settings.SECRET_FILE.get():
        return []
    try:
        reply = ask(endpoint, "list")
    except NotAuthorizedError:
        return []
    rows = reply.get("dataflows", []) if reply is not None else []
    return sorted(r["name"] for r in rows if r.get("closed") and r.get("status") in ("running", "degraded"))
