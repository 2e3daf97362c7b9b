"""The CLI's errors: click exceptions, so click prints them and exits, and no command calls ``sys.exit``.

A command raises :class:`CliError` for a failure the user can fix; click shows it as
``error: <message>`` on stderr and exits 1. ``click.exceptions.Exit(code)`` ends a command
that reports a result code (a dataflow's outcome) without an error.
"""
from __future__ import annotations

import json
import sys
from typing import IO, Any

import click


class CliError(click.ClickException):
    """``error: <message>`` on stderr, exit code 1."""

    exit_code = 1
    prefix = "error: "

    def show(self, file: IO[Any] | None = None) -> None:
        if file is None and _json_requested():  # a script asked for JSON: it gets JSON, on stdout
            click.echo(json.dumps({"error": self.format_message()}))
            return
        click.echo(self.prefix + self.format_message(), file=file, err=file is None)


def _json_requested() -> bool:
    """Whether the command line asked for ``--json`` (the option every data-printing command has)."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return "--json" in sys.argv[1:]


class ProblemsError(CliError):
    """A report that already says what is wrong where (a descriptor's list of problems): printed as is."""

    prefix = ""
