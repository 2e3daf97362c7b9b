"""``dora-zenoh bag info`` and ``bag cat``: look into a recording (like ``ros2 bag info``)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.format import fmt_bytes, table
from dora_zenoh.cli.options import CONTEXT


@click.group(context_settings=CONTEXT)
def bag() -> None:
    """Look into MCAP recordings made by `record` (or `run --record`)."""


@bag.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def info(file: Path, as_json: bool) -> None:
    """Duration, size, compression, and per topic count, rate, encoding and seq gaps."""
    from dora_zenoh.record.info import bag_info

    b = bag_info(file)
    if as_json:
        click.echo(json.dumps(b.to_dict(), indent=2))
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.start / 1e9)) if b.messages else "-"
    click.echo(f"Files:        {', '.join(b.files)}")
    click.echo(f"Size:         {fmt_bytes(b.size)}")
    click.echo(f"Compression:  {b.compression}")
    click.echo(f"Duration:     {b.duration:.3f} s")
    click.echo(f"Start:        {when}")
    click.echo(f"Messages:     {b.messages}")
    rows = [[t.topic, str(t.count), f"{t.rate:.1f}", t.encoding + (f" ({t.schema})" if t.schema else ""),
             str(t.gaps), "?" if t.sent is None and t.last_seq is not None else str(t.missing_end),
             str(t.restarts), str(t.dropped)] for t in b.topics]
    click.echo(table(["TOPIC", "COUNT", "RATE/s", "ENCODING", "GAPS", "MISSING END", "RESTARTS", "DROPPED"], rows))
    unconfirmed = sum(1 for t in b.topics if t.sent is None and t.last_seq is not None)
    if unconfirmed:
        click.echo(f"note: the end of {unconfirmed} topic(s) is unconfirmed (MISSING END '?'): no end-of-stream "
                   "notice was recorded (the recording stopped first, or the sender crashed)", err=True)
    lost = sum(t.missing for t in b.topics)
    if lost:
        click.echo(f"warning: {lost} message(s) missing (seq gaps and messages missing at the end; the recorder's "
                   "own drops are among them)", err=True)


@bag.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("topic")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.option("--no-arrays", is_flag=True, help="Show an array's type and length, not its values.")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Stop after this many messages.")
def cat(file: Path, topic: str, as_json: bool, no_arrays: bool, limit: int | None) -> None:
    """Print a topic's messages, decoded (like `topic echo`). TOPIC is node/output or a full key."""
    from dora_zenoh.introspect.decode import decode, to_json, to_text
    from dora_zenoh.record import reader

    shown = 0
    seen: set[str] = set()
    for msg in reader.read(file):
        seen.add(msg.source)
        if topic not in (msg.source, msg.key):
            continue
        d = decode(msg.payload, msg.encoding, msg.attachment, key=msg.key)
        click.echo(json.dumps(to_json(d, no_arrays)) if as_json else to_text(d, no_arrays))
        shown += 1
        if limit and shown >= limit:
            return
    if not shown and topic not in seen:
        raise CliError(f"no topic '{topic}' in {file} (topics: {', '.join(sorted(seen)) or 'none'})")


COMMANDS = [bag]
