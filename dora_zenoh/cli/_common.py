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
