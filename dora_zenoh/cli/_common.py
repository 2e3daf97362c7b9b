"""Helpers of the commands that talk to the coordinator."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dora_zenoh.cli.errors import CliError


@contextmanager
def _client(endpoint: str | None) -> Iterator[Any]:
    """A control client; any ControlError becomes a clear message and exit 1."""
    from dora_zenoh.supervision.client import Client, ControlError

    try:
        with Client(endpoint) as client:
            yield client
    except ControlError as exc:
        raise CliError(str(exc)) from None


def _endpoint(endpoint: str | None) -> str:
    from dora_zenoh.wire import zconfig

    return endpoint or zconfig.default_endpoint()


def closed_default(endpoint: str | None, names: tuple[str, ...] = ()) -> str | None:
    """For a tool given no dataflow name: the coordinator's closed dataflow that its topic
    ``names`` name (``robot/camera/image``, or a full key ``dora/robot/camera/image``), or the
    only dataflow running (then the tool joins it, and says so); else None, after naming the
    closed dataflows the tool will not see (each lives on a network of its own: docs/security.md)."""
    import click

    from dora_zenoh.introspect.discovery import hub_dataflows
    from dora_zenoh.security.ctl_client import closed_dataflows

    closed = closed_dataflows(endpoint)
    if not closed:
        return None
    named = {part for name in names for part in name.split("/")[:2]
             if name.count("/") >= 2 and part in closed}
    if len(named) == 1:
        (only,) = named
        click.echo(f"note: showing closed dataflow '{only}', which the topic names", err=True)
        return only
    if len(closed) == 1 and not hub_dataflows(endpoint):
        click.echo(f"note: showing closed dataflow '{closed[0]}', the only one running", err=True)
        return closed[0]
    click.echo(f"note: not shown: closed dataflow(s) {', '.join(closed)}, each on a network of its own "
               "(name one to see it)", err=True)
    return None
