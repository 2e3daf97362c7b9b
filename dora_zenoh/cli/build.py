"""``dora-zenoh build FILE``: run every node's ``build:`` command where the node runs.

Nodes of this machine build here, in the YAML's folder; nodes placed on other machines
(``deploy``) build on their machines, through the coordinator and their daemons, in the files
a start would run there (the same path, or the daemon's cached copy), as ``dora build`` does
with its daemons. Without a coordinator, everything builds here, and the command says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dora_zenoh.cli._common import _client
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, endpoint_option, load_or_exit

# A machine may take this long to fetch the files and build (the coordinator's own bound, and a margin).
REMOTE_TIMEOUT = 660.0


def build_or_exit(desc: object, only: set[str] | None = None) -> int:
    from dora_zenoh.supervision.build import BuildError, run_builds

    try:
        return run_builds(desc, only=only)
    except BuildError as exc:
        raise CliError(str(exc)) from None


def build_elsewhere(file: Path, endpoint: str | None) -> dict[str, Any]:
    """Each other machine's build output (by machine, then node), run by its daemon."""
    with _client(endpoint) as client:
        reply = client.call("build", timeout=REMOTE_TIMEOUT, path=str(file.resolve()))
    machines: dict[str, Any] = reply.get("machines", {})
    for machine, answer in sorted(machines.items()):
        for lines in answer.get("output", {}).values():
            for line in lines:
                click.echo(line if line.startswith("[dora-zenoh]") else f"[{machine}] {line}", err=True)
    return machines


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@endpoint_option
def build(file: Path, endpoint: str | None) -> None:
    """Run each node's `build:` command where the node runs (output prefixed); stop at the first failure.

    Nodes placed on other machines (`deploy`) build there, through the coordinator and their daemons."""
    from dora_zenoh.descriptor.placement import labelled_nodes, remote_nodes
    from dora_zenoh.supervision.client import coordinator_running, daemon_here

    desc = load_or_exit(file)
    by_machine = remote_nodes(desc)
    placed = {n for nodes in by_machine.values() for n in nodes} | set(labelled_nodes(desc))
    count, only = 0, None
    if placed and coordinator_running(endpoint) is not None:
        machines = build_elsewhere(file, endpoint)
        count += sum(line.startswith("[dora-zenoh] building ") for a in machines.values()
                     for lines in a.get("output", {}).values() for line in lines)
        only = {n.id for n in desc.nodes} - placed
    elif placed and (here := daemon_here(endpoint)) is not None:  # a machine of the coordinator's, not its own
        only = set(by_machine.get(here, []))
        click.echo(f"[dora-zenoh] note: this is machine '{here}': this builds its node(s) "
                   f"({', '.join(sorted(only)) or 'none'}) here; `dora-zenoh build` on the coordinator's machine "
                   "builds every node on its own machine", err=True)
    elif placed:  # their builds belong on their machines (docs/machines.md)
        click.echo(f"[dora-zenoh] note: {', '.join(sorted(placed))} run(s) on other machines (deploy) and no "
                   "coordinator answers: this builds them here too. With `dora-zenoh up` and the machines' "
                   "daemons running, `build` builds each node on its own machine", err=True)
    count += build_or_exit(desc, only)
    click.echo(f"[dora-zenoh] {count} build command(s) succeeded" if count else
               "[dora-zenoh] no node has a `build:` command", err=True)


COMMANDS = [build]
