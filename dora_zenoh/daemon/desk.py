"""What a daemon answers its user on its own machine (``join``, ``logs``, ``list``) when the coordinator is elsewhere.

A closed dataflow lives on a network of its own, and a tool or hand-started node joins it with
the credentials that the coordinator's control socket hands its owner
(:func:`dora_zenoh.security.ctl_client.join`). That socket is on the coordinator's machine only:
on a robot, a dynamic node, `topic echo -d NAME` or `record NAME` of a closed dataflow (the
default) found no one to ask, and the only way in was to start the dataflow `--open`. But the
robot's daemon holds the credentials of every closed dataflow with nodes on its machine (it
got them with `spawn`), and their nodes' logs. So it answers ``join``, ``logs`` and ``list``
for those on a control socket where a client of this machine looks for the coordinator's
(:func:`dora_zenoh.security.control.locate`): owner-only, as the coordinator's is, and nothing
else (no start, no stop). The daemon's user can already read those files in its own folders:
no one gains access they did not have.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh import console
from dora_zenoh.errors import CommandError, DoraZenohError
from dora_zenoh.security import access, control
from dora_zenoh.supervision.answers import Answers
from dora_zenoh.wire import keys, zconfig


class Desk:
    """The daemon's control socket on its machine (see the module docstring).

    ``handlers`` answer the commands it takes (``join``, ``logs``, ``list``) by verb,
    called with the command's arguments; they raise CommandError for what is not on this
    machine. Any other command is refused with where to run it.
    """

    def __init__(self, machine: str, coordinator: str, handlers: dict[str, Callable[..., dict[str, Any]]]) -> None:
        self.machine, self.coordinator, self._handlers = machine, coordinator, handlers
        self._answers = Answers(self._command, keys.ctl_key, "dz-desk-answer")
        self._path: Path | None = None
        self.session: zenoh.Session | None = None
        self._queryable: Any = None

    def open(self) -> None:
        """Listen (best effort: without it, joining from here needs the coordinator's machine)."""
        if control.listening(control.socket_path(self.coordinator)):  # a /tmp shared with the coordinator's
            console.warn(f"daemon '{self.machine}': a coordinator's control socket for {self.coordinator} is on "
                         "this machine's file system already: the daemon serves none of its own")
            return
        try:
            self._path = control.prepare(self.coordinator, None)
            self.session = zenoh.open(control.session_config(listen=[control.control_endpoint(self._path)]))
            control.restrict_socket(self._path, None)
            self._queryable = self.session.declare_queryable(
                keys.ctl_key("*"), zenoh.handlers.Callback(self._answers.on_query, indirect=False))
        except (DoraZenohError, OSError, zenoh.ZError) as exc:
            console.warn(f"daemon '{self.machine}': no control socket on this machine ({zconfig.reason(exc)}): the "
                         "closed dataflows running here can be joined only from the coordinator's machine")
            self.close()

    @property
    def path(self) -> Path | None:
        return self._path if self.session is not None else None

    def close(self) -> None:
        """No new question; the ones in flight answered (see supervision.answers); the socket gone."""
        if self._queryable is not None:
            self._queryable.undeclare()
            self._queryable = None
        self._answers.wait(10)
        if self.session is not None:
            self.session.close()
            self.session = None
        if self._path is not None:
            control.release(self._path)
            self._path = None

    def _command(self, verb: str, args: Any, query: zenoh.Query) -> dict[str, Any]:
        access.requester(query.attachment, os.getuid(), None)
        if verb == "desk":  # what a client asks to tell this machine's daemon from the coordinator
            return {"machine": self.machine, "coordinator": self.coordinator}
        handler = self._handlers.get(verb)
        if handler is None or not isinstance(args, dict):
            raise CommandError(f"this is the daemon of machine '{self.machine}': it answers `join`, `logs` and "
                               f"`list` for the dataflows running here; run `dora-zenoh {verb}` on the "
                               f"coordinator's machine ({self.coordinator})")
        try:
            inspect.signature(handler).bind(**args)
        except TypeError:  # arguments of another version's CLI
            raise CommandError(f"daemon of machine '{self.machine}': bad arguments for '{verb}'") from None
        return handler(**args)
