"""``dora-zenoh check``: validate a dataflow YAML."""
from __future__ import annotations

from pathlib import Path

import click

from dora_zenoh.cli.errors import ProblemsError
from dora_zenoh.cli.options import CONTEXT


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
def check(file: Path) -> None:
    """Validate a dataflow YAML and report every problem at once."""
    from dora_zenoh.descriptor import DescriptorError, check_file

    problems = check_file(file)
    if problems:
        raise ProblemsError(str(DescriptorError(problems, str(file))))
    click.echo(f"{file}: ok")


