"""``dora-zenoh run``: one dataflow in the foreground."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from dora_zenoh import settings
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, Duration, Size, cpu_latency_option, load_or_exit, secure_option


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Dataflow name, the key chunk after the prefix (default: the YAML's name or file stem).")
@click.option("--endpoint", envvar=settings.ENDPOINT.name, show_envvar=True,
              help="Zenoh hub endpoint to listen on  [default: tcp/127.0.0.1:7447].")
@click.option("--stop-after", type=Duration(), help="Stop the dataflow after this long, e.g. 30s.")
@click.option("--grace", type=Duration(), default="10s", show_default=True,
              help="After STOP, how long nodes get before their process trees are terminated.")
@click.option("--log-dir", type=click.Path(path_type=Path),
              help="Where run logs go (default: out/ next to the YAML); each run gets out/<run-id>/.")
@click.option("--log-max-size", type=Size(), metavar="SIZE",
              help="Rotate a node's log when it reaches SIZE (bytes, or e.g. 500kB, 16MiB, 1GB; 0: never)  "
                   f"[default: ${settings.LOG_MAX_BYTES.name} or 16MiB].")
@click.option("--log-max-files", type=click.IntRange(min=0), metavar="N",
              help="Rotated log files kept per node besides the current one  "
                   f"[default: ${settings.LOG_BACKUPS.name} or {settings.LOG_BACKUPS.default}].")
@click.option("--quiet", "-q", is_flag=True, help="Don't echo node output (it is still logged).")
@click.option("--hot-reload", is_flag=True,
              help="Reload a Python operator in place (keeping its state) when its file changes.")
@click.option("--record", "record_to", type=click.Path(path_type=Path),
              help="Record every output into this MCAP file, from the first message (see `record`).")
@click.option("--record-compression", type=click.Choice(["zstd", "lz4", "none"]), default="zstd",
              show_default=True, help="Chunk compression of --record.")
@cpu_latency_option
@secure_option
def run(file: Path, name: str | None, endpoint: str | None, stop_after: float | None, grace: float,
        log_dir: Path | None, log_max_size: int | None, log_max_files: int | None, quiet: bool,
        hot_reload: bool, record_to: Path | None, record_compression: str,
        cpu_latency_us: int | None, secure: bool) -> None:
    """Run a dataflow in the foreground until every node has exited.

    Ctrl-C sends STOP to every node; a second Ctrl-C kills them at once.
    """
    from dora_zenoh.errors import LogDirError
    from dora_zenoh.supervision.logfile import LogLimits
    from dora_zenoh.supervision.run import DataflowRun, RunOptions

    limits = LogLimits.from_env()
    if log_max_size is not None:
        limits.max_bytes = log_max_size
    if log_max_files is not None:
        limits.backups = log_max_files
    desc = load_or_exit(file)
    _refuse_other_machines(desc, file)
    opts = RunOptions(name=name, endpoint=endpoint, stop_after=stop_after, grace=grace,
                      log_dir=log_dir, echo=not quiet, hot_reload=hot_reload, cpu_latency_us=cpu_latency_us,
                      log_limits=limits, secure=secure)
    if record_to is not None:
        from dora_zenoh.cli.record import prepare_run_record

        opts.extra_readers = (prepare_run_record(record_to),)  # every node's start barrier waits for it
    try:
        flow = DataflowRun(desc, opts)
    except LogDirError as exc:
        raise CliError(str(exc)) from None
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
        raise CliError(str(exc)) from None
    recorder = None
    if record_to is not None:
        from dora_zenoh.cli.record import start_run_recorder

        recorder = start_run_recorder(record_to, flow.dataflow, flow.node_endpoint, desc.prefix, record_compression,
                                      flow.secret)
    click.echo(f"[dora-zenoh] dataflow '{flow.dataflow}' (run {flow.run_id}) on {flow.node_endpoint}: "
               f"{len(flow.procs)} node(s); logs in {flow.log_dir}", err=True)
    if flow.secret is not None:
        click.echo(f"[dora-zenoh] closed dataflow: tools and dynamic nodes join with "
                   f"{settings.ENDPOINT.name}={flow.node_endpoint} {settings.SECRET_FILE.name}={flow.secret} "
                   f"(read-only tools: {settings.SECRET_FILE.name}={flow.secret.parent / 'observer'})", err=True)
    result = flow.wait()
    if recorder is not None:
        from dora_zenoh.cli.record import wait_run_recorder

        wait_run_recorder(recorder)
    click.echo(result.summary(), err=True)
    raise click.exceptions.Exit(0 if result.ok else 1)


def _refuse_other_machines(desc: Any, file: Path) -> None:
    """`run` has no daemons: a node that `deploy` places on another machine cannot start."""
    from dora_zenoh.descriptor.placement import remote_nodes

    placed = remote_nodes(desc)
    if placed:
        where = "; ".join(f"{', '.join(ids)} on machine '{m}'" for m, ids in sorted(placed.items()))
        raise CliError(f"{file} places nodes on other machines ({where}); `run` runs everything here. "
                       "Start a coordinator (`dora-zenoh up --endpoint tls/ADDR:7447`) and a daemon on each "
                       "machine, then `dora-zenoh start` it (see docs/machines.md); or remove `deploy`")
