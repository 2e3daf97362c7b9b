"""``dora-zenoh check``: validate a dataflow YAML."""
from __future__ import annotations

from pathlib import Path

import click

from dora_zenoh.cli.errors import CliError, ProblemsError
from dora_zenoh.cli.options import CONTEXT, endpoint_option


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@endpoint_option
def check(file: Path, endpoint: str | None) -> None:
    """Validate a dataflow YAML and report every problem at once.

    When the YAML places nodes on other machines (`deploy: {machine: ID}`) and a coordinator
    answers, also check that a daemon of each machine is connected to it."""
    from dora_zenoh.descriptor import DescriptorError, check_file, load_descriptor
    from dora_zenoh.descriptor.placement import remote_nodes

    problems = check_file(file)
    if problems:
        raise ProblemsError(str(DescriptorError(problems, str(file))))
    placed = remote_nodes(load_descriptor(file))
    if placed:
        from dora_zenoh.supervision.client import coordinator_running

        info = coordinator_running(endpoint)
        if info is None:
            click.echo(f"{file}: ok (machines {', '.join(sorted(placed))} not checked: no coordinator answers)")
            return
        missing = sorted(set(placed) - set(info.get("daemons", [])))
        if missing:
            raise CliError(f"{file}: no daemon of machine(s) {', '.join(missing)} is connected to the coordinator "
                           f"(connected: {', '.join(info.get('daemons', [])) or 'none'}); start "
                           f"`dora-zenoh daemon --machine-id {missing[0]} --coordinator ...` there")
    click.echo(f"{file}: ok")


