"""``dora-zenoh top``: a live view of every node (CPU, RSS, messages in/out per second, drops, queues)."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click

from dora_zenoh.cli.format import fmt_bytes, table
from dora_zenoh.cli.node import fmt_cpu, several_machines
from dora_zenoh.cli.options import CONTEXT, Duration, endpoint_option
from dora_zenoh.cli.topic import dataflow_option, observer, quiet_interrupt

HEADERS = ["DATAFLOW", "NODE", "STATUS", "PID", "CPU%", "RSS", "OUT/s", "IN/s", "DROPPED", "QUEUED", "RESTARTS"]


def _render(found: list[Any]) -> str:
    rate = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
    m = several_machines(found)  # a MACHINE column when the nodes run on several machines
    headers = [*HEADERS[:2], *(["MACHINE"] if m else []), *HEADERS[2:]]
    return table(headers, [[r.dataflow, r.id, *([r.machine or "-"] if m else []), r.status, str(r.pid or "-"),
                            fmt_cpu(r.cpu), fmt_bytes(r.rss or 0), rate(r.out_rate), rate(r.in_rate),
                            str(r.dropped), str(r.queued), "-" if r.restarts is None else str(r.restarts)]
                           for r in found])


@click.command(context_settings=CONTEXT)
@dataflow_option
@click.option("--interval", "-i", type=Duration(positive=True), default="1s", show_default=True, help="Refresh period.")
@click.option("--once", is_flag=True, help="Measure over one interval, print, and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: the rows as JSON.")
@endpoint_option
def top(dataflow: str | None, interval: float, once: bool, as_json: bool, endpoint: str | None) -> None:
    """Live view of every node of the running dataflows (Ctrl-C quits)."""
    from dora_zenoh.introspect.discovery import wait_snapshot
    from dora_zenoh.introspect.usage import CpuSampler, Unreachable, rows, supervisor_rows

    quiet_interrupt()
    with observer(endpoint, dataflow) as session, Unreachable(endpoint, dataflow) as skip:
        cpu = CpuSampler()
        prev = wait_snapshot(session.client, dataflow, skip=skip)
        cpu.prime([n.pid for n in prev.nodes.values() if n.pid])
        t_prev = time.monotonic()
        tty = sys.stdout.isatty() and not once
        try:
            while True:
                time.sleep(interval)
                snap = wait_snapshot(session.client, dataflow, timeout=3.0, skip=skip)
                now = time.monotonic()
                sup = supervisor_rows(session.client, list(snap.dataflows()), endpoint, timeout=0.5)
                found = rows(snap, cpu, prev, now - t_prev, sup)
                prev, t_prev = snap, now
                if once:
                    click.echo(json.dumps([r.as_dict() for r in found], indent=2) if as_json else _render(found))
                    return
                body = _render(found) if found else "no running nodes"
                stamp = time.strftime("%H:%M:%S")
                if tty:  # home + clear screen: a refresh in place, no scrollback flood
                    sys.stdout.write("\x1b[H\x1b[2J")
                click.echo(f"dora-zenoh top  {stamp}  every {interval:g}s  (Ctrl-C quits)\n{body}")
                if not tty:
                    click.echo("")
        except KeyboardInterrupt:
            pass
        finally:
            if tty and os.environ.get("TERM") != "dumb":
                sys.stdout.write("\n")


COMMANDS = [top]
