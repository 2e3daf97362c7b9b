"""The ``dora-zenoh`` command line (click): one module per verb group, shared options in ``options``."""
from __future__ import annotations

import os
from typing import Any

import click

from dora_zenoh import __version__
from dora_zenoh.cli import (
    bag,
    build,
    certs,
    check,
    coordinator,
    daemon,
    dataflows,
    foxglove,
    graph,
    machines,
    node,
    record,
    replay,
    run,
    top,
    topic,
)
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT
from dora_zenoh.errors import DoraZenohError
from dora_zenoh.wire import zconfig, zruntime


class _Main(click.Group):
    """The command group; a DoraZenohError no command caught still reaches the user as
    ``error: <its message>`` and exit 1, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DoraZenohError as exc:
            raise CliError(str(exc)) from exc


@click.group(cls=_Main, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="dora-zenoh")
def main() -> None:
    """dora-zenoh: run dora dataflows on an Eclipse Zenoh data plane.

    Every output is published on the Zenoh key {prefix}/{dataflow}/{node}/{output};
    watch them all with any Zenoh subscriber on 'dora/**'.
    """
    runtime = os.environ.get(zconfig.RUNTIME_ENV)
    if runtime:  # Zenoh panics on one it cannot read, in the first session a command opens
        zruntime.check(runtime, "the environment")


for _command in (check.check, *build.COMMANDS, run.run, *coordinator.COMMANDS, *daemon.COMMANDS, *dataflows.COMMANDS,
                 *topic.COMMANDS, *graph.COMMANDS, *machines.COMMANDS, *node.COMMANDS, *top.COMMANDS, *certs.COMMANDS,
                 *record.COMMANDS, *replay.COMMANDS, *bag.COMMANDS, *foxglove.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]
