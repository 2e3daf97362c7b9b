"""``dora-zenoh record``: record a running dataflow's messages into an MCAP file."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, Duration, Endpoint, Size
from dora_zenoh.signals import on_signals


def split_targets(args: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """``[DATAFLOW] [TOPIC ...]``: a first word without ``/`` is the dataflow, the rest topics."""
    if args and "/" not in args[0]:
        return args[0], list(args[1:])
    return None, list(args)


@click.command(context_settings=CONTEXT)
@click.argument("targets", nargs=-1, metavar="[DATAFLOW] [TOPIC ...]")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="The MCAP file to write  [default: <dataflow>-<time>.mcap].")
@click.option("--all", "all_topics", is_flag=True, help="Record every topic (the default when no TOPIC is given).")
@click.option("--duration", type=Duration(positive=True), help="Stop after this long, e.g. 30s.")
@click.option("--split-size", type=Size(), help="Start a new file after this many bytes, e.g. 100MiB.")
@click.option("--split-duration", type=Duration(positive=True), help="Start a new file after this long, e.g. 60s.")
@click.option("--compression", type=click.Choice(["zstd", "lz4", "none"]), default="zstd", show_default=True)
@click.option("--buffer", "buffer_bytes", type=Size(), default="512MiB", show_default=True,
              help="Memory for messages the disk has not taken yet; past it, messages are dropped and counted.")
@click.option("--foxglove", "foxglove_json", is_flag=True,
              help="Also write a JSON channel (<key>/@json) for Arrow data with an obvious JSON form, "
                   "which Foxglove can plot.")
@click.option("--prefix", default="dora", show_default=True, help="The key prefix of the dataflow.")
@click.option("--endpoint", type=Endpoint(), help="Zenoh endpoint of the dataflow's hub  [default: $DORA_ZENOH_ENDPOINT or "
                                 "tcp/127.0.0.1:7447].")
@click.option("--as-reader", "reader_id", hidden=True,
              help="Announce this node id, so the dataflow's start barrier waits for us (run --record).")
def record(targets: tuple[str, ...], output: Path | None, all_topics: bool, duration: float | None,
           split_size: int | None, split_duration: float | None, compression: str, buffer_bytes: int,
           foxglove_json: bool, prefix: str, endpoint: str | None, reader_id: str | None) -> None:
    """Record a running dataflow into an MCAP file, until Ctrl-C, --duration or the dataflow's end.

    TOPIC is node/output (or a full key). The file keeps payload bytes, encoding,
    metadata, sequence numbers and timestamps: `replay` reproduces them exactly.
    """
    import time

    from dora_zenoh.cli._common import closed_default
    from dora_zenoh.record.recorder import keep_freed_memory, open_recorder
    from dora_zenoh.security.ctl_client import join
    from dora_zenoh.wire import zconfig

    dataflow, topics = split_targets(targets)
    if all_topics and topics:
        raise CliError("give either TOPIC names or --all, not both")
    if topics and not dataflow and not all(t.startswith(prefix + "/") for t in topics):
        raise CliError("a TOPIC as node/output needs the DATAFLOW first, e.g. `record mydataflow camera/image`")
    if dataflow is None and not topics:  # the coordinator's closed dataflow, if it is the only one
        dataflow = closed_default(endpoint)
    path = output or Path(f"{dataflow or prefix}-{time.strftime('%Y%m%d-%H%M%S')}.mcap")
    keep_freed_memory()  # this process records only
    early: list[str] = []  # a Ctrl-C while the recorder opens still ends it cleanly
    signal.signal(signal.SIGINT, lambda *_: early.append("interrupted"))
    signal.signal(signal.SIGTERM, lambda *_: early.append("terminated"))
    # a closed dataflow: its own network (a reader that acks its sources must be a member)
    endpoint = join(endpoint, dataflow, member=reader_id is not None)
    rec = open_recorder(path, endpoint=endpoint or zconfig.default_endpoint(), prefix=prefix, dataflow=dataflow,
                        topics=topics, compression=compression, split_size=split_size,
                        split_duration=split_duration, buffer_bytes=buffer_bytes, reader_id=reader_id,
                        foxglove_json=foxglove_json)

    def on_signal(signum: int) -> None:
        rec.stop("interrupted" if signum == signal.SIGINT else "terminated")

    on_signals(on_signal, signal.SIGINT, signal.SIGTERM)
    if early:
        rec.stop(early[0])
    what = f"dataflow '{dataflow}'" if dataflow else f"every dataflow under '{prefix}/'"
    click.echo(f"[dora-zenoh] recording {what} ({', '.join(rec.key_exprs())}) into {path}; Ctrl-C to stop",
               err=True)
    if dataflow and not rec.runner_seen.wait(1.0):
        click.echo(f"[dora-zenoh] dataflow '{dataflow}' is not running (yet): waiting for it", err=True)
    result = rec.run(duration)
    click.echo(result.summary(), err=True)
    if result.errors:
        raise click.exceptions.Exit(1)
COMMANDS = [record]


# -- run --record: the recorder as a process of its own ----------------------------------------------
def prepare_run_record(path: Path) -> str:
    """Before the dataflow starts: fail now if the recording cannot be written (every node would
    wait at its start barrier for a recorder that never comes). Returns the recorder's node id."""
    import os

    try:
        import mcap  # noqa: F401
    except ImportError:
        raise CliError("--record needs the `mcap` package: pip install 'dora-zenoh[record]'") from None
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK) or path.is_dir():
        raise CliError(f"--record {path}: cannot write there (is {folder} an existing, writable folder?)")
    from dora_zenoh.record.recorder import RECORDER_ID

    return RECORDER_ID


def start_run_recorder(path: Path, dataflow: str, endpoint: str, prefix: str, compression: str = "zstd",
                       secret: Path | None = None) -> Any:
    """Start ``dora-zenoh record`` for ``run --record``: in a process of its own (its Zenoh
    callbacks and disk writes stay off the runner's threads) and a session of its own (Ctrl-C
    reaches the runner only: the recorder ends when the dataflow does, with its last messages)."""
    import subprocess

    from dora_zenoh.supervision.spawn import recorder_command, recorder_env

    return subprocess.Popen(recorder_command(dataflow, path, endpoint, prefix, compression), env=recorder_env(secret),
                            stdin=subprocess.DEVNULL, start_new_session=True)


def wait_run_recorder(proc: Any, timeout: float = 60.0) -> None:
    """The dataflow ended: the recorder follows (it watches the runner's token); bounded."""
    import subprocess

    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: it still closes the file properly
        proc.wait(30)
