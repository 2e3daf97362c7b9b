"""What a daemon answers on its own machine: ``join``, for its user, when the coordinator is elsewhere.

A closed dataflow lives on a network of its own, and a tool or hand-started node joins it with
the credentials that the coordinator's control socket hands its owner
(:func:`dora_zenoh.security.ctl_client.join`). That socket is on the coordinator's machine only:
on a robot, a dynamic node, `topic echo -d NAME` or `record NAME` of a closed dataflow (the
default) found no one to ask, and the only way in was to start the dataflow `--open`. But the
robot's daemon holds the credentials of every closed dataflow with nodes on its machine (it
got them with `spawn`). So it answers ``join`` for those on a control socket where a client of
this machine looks for the coordinator's (:func:`dora_zenoh.security.control.locate`): owner-only,
as the coordinator's is, and for nothing else. The daemon's user can already read those
credentials in its own folder: no one gains access they did not have.
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh import console
from dora_zenoh.errors import CommandError, DoraZenohError
from dora_zenoh.security import access, control
from dora_zenoh.supervision.answers import Answers
from dora_zenoh.wire import auth, keys, zconfig
from dora_zenoh.wire.endpoint import parse as parse_endpoint


def on_this_machine(endpoint: str) -> bool:
    """Whether ``endpoint``'s address is one of this machine's (it can be bound here)."""
    host = parse_endpoint(endpoint).host.strip("[]")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


class Desk:
    """The daemon's control socket on its machine (see the module docstring).

    ``find(name)`` gives the running part of dataflow ``name`` on this machine as (its
    credentials file or None when open, the endpoint its part listens on), or None.
    """

    def __init__(self, machine: str, coordinator: str,
                 find: Callable[[str], tuple[Path | None, str] | None]) -> None:
        self.machine, self.coordinator, self._find = machine, coordinator, find
        self._answers = Answers(self._command, keys.ctl_key, "dz-desk-answer")
        self._path: Path | None = None
        self._session: zenoh.Session | None = None
        self._queryable: Any = None

    def open(self) -> None:
        """Listen (best effort: without it, joining from here needs the coordinator's machine)."""
        if control.listening(control.socket_path(self.coordinator)):  # a /tmp shared with the coordinator's
            console.warn(f"daemon '{self.machine}': a coordinator's control socket for {self.coordinator} is on "
                         "this machine's file system already: the daemon serves none of its own")
            return
        try:
            self._path = control.prepare(self.coordinator, None)
            self._session = zenoh.open(control.session_config(listen=[control.control_endpoint(self._path)]))
            control.restrict_socket(self._path, None)
            self._queryable = self._session.declare_queryable(
                keys.ctl_key("*"), zenoh.handlers.Callback(self._answers.on_query, indirect=False))
        except (DoraZenohError, OSError, zenoh.ZError) as exc:
            console.warn(f"daemon '{self.machine}': no control socket on this machine ({zconfig.reason(exc)}): the closed "
                         "dataflows running here can be joined only from the coordinator's machine")
            self.close()

    @property
    def path(self) -> Path | None:
        return self._path if self._session is not None else None

    def close(self) -> None:
        """No new question; the ones in flight answered (see supervision.answers); the socket gone."""
        if self._queryable is not None:
            self._queryable.undeclare()
            self._queryable = None
        self._answers.wait(10)
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._path is not None:
            control.release(self._path)
            self._path = None

    def _command(self, verb: str, args: Any, query: zenoh.Query) -> dict[str, Any]:
        claim = json.loads(query.attachment.to_bytes()) if query.attachment is not None else {}
        access.authorize(claim.get("uid") if isinstance(claim, dict) else None, os.getuid(), None)
        if verb != "join" or not isinstance(args, dict) or not isinstance(args.get("target"), str):
            raise CommandError(f"this is the daemon of machine '{self.machine}': it answers only for the "
                               f"dataflows running here (dynamic nodes and tools join them through it); run "
                               f"`dora-zenoh {verb}` on the coordinator's machine ({self.coordinator})")
        name = args["target"]
        found = self._find(name)
        if found is None:  # (a node of an open dataflow joins through the coordinator's hub all the same)
            raise CommandError(f"machine '{self.machine}' runs no node of a dataflow '{name}': a closed dataflow is "
                               "joined from the coordinator's machine or from one that runs some of its nodes")
        secret, endpoint = found
        if secret is None:  # open: through the coordinator's hub, as from anywhere
            return {"closed": False, "endpoint": self.coordinator}
        return {"closed": True, "endpoint": endpoint, "credentials": str(secret),
                "observer": str(auth.observer_file(secret))}
