"""The CLI's errors: click exceptions, so click prints them and exits, and no command calls ``sys.exit``.

A command raises :class:`CliError` for a failure the user can fix; click shows it as
``error: <message>`` on stderr and exits 1. ``click.exceptions.Exit(code)`` ends a command
that reports a result code (a dataflow's outcome) without an error.
"""
from __future__ import annotations

from typing import IO, Any

import click


class CliError(click.ClickException):
    """``error: <message>`` on stderr, exit code 1."""

    exit_code = 1
    prefix = "error: "

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.prefix + self.format_message(), file=file, err=file is None)


class ProblemsError(CliError):
    """A report that already says what is wrong where (a descriptor's list of problems): printed as is."""

    prefix = ""
