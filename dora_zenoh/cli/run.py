"""``dora-zenoh run``: one dataflow in the foreground."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from dora_zenoh import settings
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import (
    CONTEXT,
    Duration,
    Endpoint,
    Size,
    cpu_latency_option,
    load_or_exit,
    secure_option,
)
from dora_zenoh.signals import on_signals


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Dataflow name, the key chunk after the prefix (default: the YAML's name or file stem).")
@click.option("--endpoint", envvar=settings.ENDPOINT.name, show_envvar=True, type=Endpoint(),
              help="Zenoh hub endpoint to listen on  [default: tcp/127.0.0.1:7447].")
@click.option("--stop-after", type=Duration(positive=True), help="Stop the dataflow after this long, e.g. 30s.")
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
@click.option("--fail-fast", is_flag=True,
              help="Stop the whole dataflow when a node fails for good (default, as in dora: the others "
                   "go on and the dataflow is 'degraded'); also the YAML's top-level `fail_fast: true`.")
@click.option("--build", "build_first", is_flag=True,
              help="Run every node's `build:` command first (as `dora-zenoh build`); a failure starts nothing.")
@click.option("--record", "record_to", type=click.Path(path_type=Path),
              help="Record every output into this MCAP file, from the first message (see `record`).")
@click.option("--record-compression", type=click.Choice(["zstd", "lz4", "none"]), default="zstd",
              show_default=True, help="Chunk compression of --record.")
@cpu_latency_option
@secure_option
def run(file: Path, name: str | None, endpoint: str | None, stop_after: float | None, grace: float,
        log_dir: Path | None, log_max_size: int | None, log_max_files: int | None, quiet: bool,
        hot_reload: bool, fail_fast: bool, build_first: bool, record_to: Path | None, record_compression: str,
        cpu_latency_us: int | None, secure: bool | None) -> None:
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
    _place_here_or_refuse(desc, file)
    if build_first:
        from dora_zenoh.cli.build import build_or_exit

        build_or_exit(desc)
    opts = RunOptions(name=name, endpoint=endpoint, stop_after=stop_after, grace=grace,
                      log_dir=log_dir, echo=not quiet, hot_reload=hot_reload, cpu_latency_us=cpu_latency_us,
                      fail_fast=fail_fast, log_limits=limits, secure=secure)
    if record_to is not None:
        from dora_zenoh.cli.record import prepare_run_record

        opts.extra_readers = (prepare_run_record(record_to),)  # every node's start barrier waits for it
    try:
        flow = DataflowRun(desc, opts)
    except LogDirError as exc:
        raise CliError(str(exc)) from None
    interrupts = 0

    def on_signal(signum: int) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            click.echo(f"\n[dora-zenoh] stopping: STOP sent, nodes get {grace:g} s (Ctrl-C again to kill)",
                       err=True)
            flow.stop()
            grace_watch(flow, grace)
        else:
            left = still_running(flow)
            click.echo("\n[dora-zenoh] second Ctrl-C: " + (f"killing {', '.join(left)} now" if left else
                       "every node had already stopped"), err=True)
            flow.kill(action="interrupted")

    on_signals(on_signal, signal.SIGINT, signal.SIGTERM)  # on a thread: flow.stop() takes a queue's lock
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


def still_running(flow: Any) -> list[str]:
    """The nodes whose process is still alive (not yet exited after STOP)."""
    return [s["id"] for s in flow.node_states() if s["pid"] and s["status"] in ("running", "stopping")]


def grace_watch(flow: Any, grace: float) -> None:
    """During the grace period, say which nodes are still running (refreshed each second on a
    terminal, every 3 s when piped), so a hanging node is named before it is killed."""
    import sys
    import threading
    import time

    tty = sys.stderr.isatty()
    start = time.monotonic()

    def watch() -> None:
        shown = ""
        while True:
            time.sleep(1.0 if tty else 3.0)
            left = still_running(flow)
            elapsed = time.monotonic() - start
            if not left or elapsed > grace + 5:
                if tty and shown:
                    sys.stderr.write("\r\x1b[K")
                return
            line = f"[dora-zenoh] waiting {elapsed:.0f}/{grace:g} s for: {', '.join(left)}"
            if tty:
                sys.stderr.write("\r\x1b[K" + line)
                sys.stderr.flush()
            elif line.split(" for: ")[1] != shown.split(" for: ")[-1]:
                click.echo(line, err=True)
            shown = line

    threading.Thread(target=watch, daemon=True, name="grace-watch").start()


def _place_here_or_refuse(desc: Any, file: Path) -> None:
    """`run` has no daemons: a node that `deploy` places on another machine cannot start. One
    placed on this machine (its id as `up` names it) runs here as the others do, so the YAML
    that `start` runs on this machine's daemon runs under `run` too."""
    from dora_zenoh.descriptor.placement import describe, labelled_nodes, remote_nodes
    from dora_zenoh.supervision.home import machine_id

    here = machine_id()
    for node in desc.nodes:
        if node.machine == here:
            node.deploy = None
    placed = remote_nodes(desc)
    labelled = labelled_nodes(desc)
    if placed or labelled:
        where = "; ".join([f"{', '.join(ids)} on machine '{m}'" for m, ids in sorted(placed.items())]
                          + [f"{n} on a machine labelled {describe(w)}" for n, w in sorted(labelled.items())])
        raise CliError(f"{file} places nodes on other machines ({where}); `run` runs everything here. "
                       "Start a coordinator (`dora-zenoh up --endpoint tls/ADDR:7447`) and a daemon on each "
                       "machine, then `dora-zenoh start` it (see docs/machines.md); or remove `deploy`")
