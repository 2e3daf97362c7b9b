"""``dora-zenoh run``: one dataflow in the foreground."""
from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from dora_zenoh.cli.options import CONTEXT, Duration, cpu_latency_option, load_or_exit


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Dataflow name, the key chunk after the prefix (default: the YAML's name or file stem).")
@click.option("--endpoint", envvar="DORA_ZENOH_ENDPOINT", show_envvar=True,
              help="Zenoh hub endpoint to listen on  [default: tcp/127.0.0.1:7447].")
@click.option("--stop-after", type=Duration(), help="Stop the dataflow after this long, e.g. 30s.")
@click.option("--grace", type=Duration(), default="10s", show_default=True,
              help="After STOP, how long nodes get before their process trees are terminated.")
@click.option("--log-dir", type=click.Path(path_type=Path),
              help="Where run logs go (default: out/ next to the YAML); each run gets out/<run-id>/.")
@click.option("--log-max-size", metavar="SIZE",
              help="Rotate a node's log when it reaches SIZE (bytes, or 500k, 16M, 1G; 0: never)  "
                   "[default: $DORA_ZENOH_LOG_MAX_BYTES or 16M].")
@click.option("--log-max-files", type=click.IntRange(min=0), metavar="N",
              help="Rotated log files kept per node besides the current one  "
                   "[default: $DORA_ZENOH_LOG_BACKUPS or 2].")
@click.option("--quiet", "-q", is_flag=True, help="Don't echo node output (it is still logged).")
@click.option("--hot-reload", is_flag=True,
              help="Reload a Python operator in place (keeping its state) when its file changes.")
@cpu_latency_option
def run(file: Path, name: str | None, endpoint: str | None, stop_after: float | None, grace: float,
        log_dir: Path | None, log_max_size: str | None, log_max_files: int | None, quiet: bool,
        hot_reload: bool, cpu_latency_us: int | None) -> None:
    """Run a dataflow in the foreground until every node has exited.

    Ctrl-C sends STOP to every node; a second Ctrl-C kills them at once.
    """
    from dora_zenoh.errors import LogDirError
    from dora_zenoh.supervision.logfile import LogLimits, parse_size
    from dora_zenoh.supervision.run import DataflowRun, RunOptions

    limits = LogLimits.from_env()
    if log_max_size is not None:
        try:
            limits.max_bytes = parse_size(log_max_size)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--log-max-size") from None
    if log_max_files is not None:
        limits.backups = log_max_files
    desc = load_or_exit(file)
    opts = RunOptions(name=name, endpoint=endpoint, stop_after=stop_after, grace=grace,
                      log_dir=log_dir, echo=not quiet, hot_reload=hot_reload, cpu_latency_us=cpu_latency_us,
                      log_limits=limits)
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
