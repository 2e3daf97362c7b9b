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

    When the YAML places nodes on other machines (`deploy: {machine: ID}` or `{labels: ...}`) and a
    coordinator answers, also check that a daemon of each machine (or with those labels) is connected
    to it, and say where each labelled node would run."""
    from dora_zenoh.descriptor import DescriptorError, check_file, load_descriptor
    from dora_zenoh.descriptor.placement import (
        deploy_line,
        labelled_nodes,
        machine_hint,
        remote_nodes,
        resolve,
    )
    from dora_zenoh.errors import PlacementError

    problems = check_file(file)
    if problems:
        raise ProblemsError(str(DescriptorError(problems, str(file))))
    desc = load_descriptor(file)
    placed, labelled = remote_nodes(desc), labelled_nodes(desc)
    if placed or labelled:
        from dora_zenoh.supervision.client import coordinator_running, daemon_here

        info = coordinator_running(endpoint)
        if info is None:
            what = ", ".join([f"machines {', '.join(sorted(placed))}"] * bool(placed) + ["daemon labels"] * bool(labelled))
            here = daemon_here(endpoint)
            why = (f"on machine '{here}': `dora-zenoh check` on the coordinator's machine checks them" if here
                   else "no coordinator answers")
            click.echo(f"{file}: ok ({what} not checked: {why})")
            return
        connected = list(info.get("daemons", []))
        missing = sorted(set(placed) - set(connected))
        if missing:
            lines = []
            for m in missing:
                line = deploy_line(file, placed[m][0])
                lines.append(f"{file}{f':{line}' if line else ''}: node '{placed[m][0]}': no daemon of machine '{m}' "
                             f"is connected to the coordinator{machine_hint(m, connected)}")
            raise CliError("\n".join(lines) + f"\n  daemons connected: {', '.join(connected) or 'none'}; start "
                           f"`dora-zenoh daemon --machine-id {missing[0]} --coordinator ...` on that machine, "
                           "or place the node on a connected one")
        try:
            chosen = resolve(desc, {m: info.get("labels", {}).get(m, {}) for m in connected})
        except PlacementError as exc:
            raise CliError(f"{file}: {exc}") from None
        for node, machine in sorted(chosen.items()):
            click.echo(f"{file}: node '{node}' would run on machine '{machine}' (its labels)")
    click.echo(f"{file}: ok")


