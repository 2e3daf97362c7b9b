"""The CLI's side of the control plane: JSON queries to the coordinator over Zenoh.

The CLI opens a Zenoh *client* session to the coordinator's endpoint: it reaches
the coordinator (and, through it, the network) without linking to every node the
way a peer would, and it needs no listening port.
"""
from __future__ import annotations

import json
import time
from typing import Any

import zenoh

from dora_zenoh.errors import ControlError
from dora_zenoh.wire import keys, zconfig


class Client:
    """A connection to the coordinator on ``endpoint`` (a context manager)."""

    def __init__(self, endpoint: str | None = None, connect_timeout: float = 3.0) -> None:
        self.endpoint = endpoint or zconfig.default_endpoint()
        conf = zconfig.peer_config([self.endpoint], [])
        conf.insert_json5("mode", '"client"')
        try:
            self.session = zenoh.open(conf)
        except zenoh.ZError:  # nothing listens there (Zenoh's own message names its source files)
            raise ControlError(self._unreachable()) from None
        deadline = time.monotonic() + connect_timeout
        while not (list(self.session.info.peers_zid()) or list(self.session.info.routers_zid())):
            if time.monotonic() > deadline:
                self.session.close()
                raise ControlError(self._unreachable())
            time.sleep(0.01)

    def _unreachable(self, extra: str = "") -> str:
        return (f"no coordinator is running on {self.endpoint}{extra}: start one with `dora-zenoh up` "
                "(or pass --endpoint / set DORA_ZENOH_ENDPOINT)")

    def call(self, verb: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        """Send one command; its reply as a dict. Raises ControlError with the coordinator's message."""
        payload = json.dumps({k: v for k, v in args.items() if v is not None})
        for reply in self.session.get(keys.ctl_key(verb), payload=payload, timeout=timeout):
            if reply.ok is None:
                continue
            try:
                answer = json.loads(reply.ok.payload.to_bytes())
            except ValueError:
                continue
            if not answer.get("ok"):
                raise ControlError(answer.get("error", "the coordinator refused the command"))
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


def coordinator_running(endpoint: str | None = None, timeout: float = 2.0) -> dict[str, Any] | None:
    """The coordinator's ``info`` if one answers on ``endpoint``, else None."""
    if not zconfig.tcp_port_in_use(endpoint or zconfig.default_endpoint()):
        return None
    try:
        with Client(endpoint, connect_timeout=timeout) as client:
            return client.call("info", timeout=timeout)
    except ControlError:
        return None
