"""The ``dora-zenoh`` command line (click)."""
from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from dora_zenoh import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Duration(click.ParamType):
    """``10s``, ``500ms``, ``2m``, ``1h`` or plain seconds."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        from dora_zenoh.runner import parse_duration

        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


cpu_latency_option = click.option(
    "--cpu-latency-us", type=click.IntRange(min=0), envvar="DORA_ZENOH_CPU_LATENCY_US", show_envvar=True,
    help="While the dataflow runs, keep idle CPUs able to wake within this many µs (Linux PM QoS, "
         "/dev/cpu_dma_latency; 0: idle CPUs poll). Cuts message latency where waking an idle CPU is "
         "slow (virtual machines, deep C-states), at the cost of power. Needs write access to that file.")


def load_or_exit(path: Path) -> Any:
    """The validated descriptor, or every problem printed and exit 1."""
    from dora_zenoh.descriptor import DescriptorError, load_descriptor

    try:
        return load_descriptor(path)
    except DescriptorError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="dora-zenoh")
def main() -> None:
    """dora-zenoh: run dora dataflows on an Eclipse Zenoh data plane.

    Every output is published on the Zenoh key {prefix}/{dataflow}/{node}/{output};
    watch them all with any Zenoh subscriber on 'dora/**'.
    """


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
def check(file: Path) -> None:
    """Validate a dataflow YAML and report every problem at once."""
    from dora_zenoh.descriptor import DescriptorError, check_file

    problems = check_file(file)
    if problems:
        click.echo(str(DescriptorError(problems, str(file))), err=True)
        sys.exit(1)
    click.echo(f"{file}: ok")


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Dataflow name, the key chunk after the prefix (default: the YAML's name or file stem).")
@click.option("--endpoint", envvar="DORA_ZENOH_ENDPOINT", show_envvar=True,
              help="Zenoh hub endpoint to listen on  [default: tcp/127.0.0.1:7447].")
@click.option("--stop-after", type=Duration(), help="Stop the dataflow after this long, e.g. 30s.")
@click.option("--grace", type=Duration(), default="10s", show_default=True,
              help="After STOP, how long nodes get before their process trees are terminated.")
@click.option("--log-dir", type=click.Path(path_type=Path),
              help="Where run logs go (default: out/ next to the YAML); each run gets out/<run-id>/.")
@click.option("--quiet", "-q", is_flag=True, help="Don't echo node output (it is still logged).")
@click.option("--hot-reload", is_flag=True,
              help="Reload a Python operator in place (keeping its state) when its file changes.")
@cpu_latency_option
def run(file: Path, name: str | None, endpoint: str | None, stop_after: float | None, grace: float,
        log_dir: Path | None, quiet: bool, hot_reload: bool, cpu_latency_us: int | None) -> None:
    """Run a dataflow in the foreground until every node has exited.

    Ctrl-C sends STOP to every node; a second Ctrl-C kills them at once.
    """
    from dora_zenoh.errors import LogDirError
    from dora_zenoh.runner import DataflowRun, RunOptions

    desc = load_or_exit(file)
    opts = RunOptions(name=name, endpoint=endpoint, stop_after=stop_after, grace=grace,
                      log_dir=log_dir, echo=not quiet, hot_reload=hot_reload, cpu_latency_us=cpu_latency_us)
    try:
        flow = DataflowRun(desc, opts)
    except LogDirError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    interrupts = 0

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            click.echo("\n[dora-zenoh] stopping (Ctrl-C again to kill)", err=True)
            flow.stop()
        else:
            flow.kill()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        flow.start()
    except Exception as exc:  # a node that cannot start: nothing is left running
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"[dora-zenoh] dataflow '{flow.dataflow}' (run {flow.run_id}) on {flow.node_endpoint}: "
               f"{len(flow.procs)} node(s); logs in {flow.log_dir}", err=True)
    result = flow.wait()
    click.echo(result.summary(), err=True)
    sys.exit(0 if result.ok else 1)


def _register_coordinator_commands() -> None:
    """up, down, coordinator, start, stop, restart, list, logs, clean (see cli_coordinator)."""
    from dora_zenoh.cli_coordinator import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_coordinator_commands()

if __name__ == "__main__":
    main()
