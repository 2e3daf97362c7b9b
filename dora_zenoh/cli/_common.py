"""Helpers of the commands that talk to the coordinator."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@contextmanager
def _client(endpoint: str | None) -> Iterator[Any]:
    """A control client; any ControlError becomes a clear message and exit 1."""
    from dora_zenoh.supervision.client import Client, ControlError

    try:
        with Client(endpoint) as client:
            yield client
    except ControlError as exc:
        _fail(str(exc))


def _endpoint(endpoint: str | None) -> str:
    from dora_zenoh.wire import zconfig

    return endpoint or zconfig.default_endpoint()
