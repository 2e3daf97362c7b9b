"""``dora-zenoh build FILE``: run every node's ``build:`` command in the YAML's folder."""
from __future__ import annotations

from pathlib import Path

import click

from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, load_or_exit


def build_or_exit(desc: object) -> int:
    from dora_zenoh.supervision.build import BuildError, run_builds

    try:
        return run_builds(desc)
    except BuildError as exc:
        raise CliError(str(exc)) from None


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
def build(file: Path) -> None:
    """Run each node's `build:` command (in the YAML's folder, output prefixed); stop at the first failure."""
    from dora_zenoh.descriptor.placement import labelled_nodes, remote_nodes

    desc = load_or_exit(file)
    placed = sorted([n for nodes in remote_nodes(desc).values() for n in nodes] + list(labelled_nodes(desc)))
    if placed:  # their builds belong on their machines (docs/machines.md)
        click.echo(f"[dora-zenoh] note: {', '.join(placed)} run(s) on other machines (deploy); this builds them "
                   "here too. `dora-zenoh start --build` builds each node on its own machine", err=True)
    count = build_or_exit(desc)
    click.echo(f"[dora-zenoh] {count} build command(s) succeeded" if count else
               "[dora-zenoh] no node has a `build:` command", err=True)


COMMANDS = [build]
