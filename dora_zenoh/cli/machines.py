"""``dora-zenoh machines``: the daemons that joined the coordinator, connected or lost."""
from __future__ import annotations

import json

import click

from dora_zenoh.cli._common import _client
from dora_zenoh.cli.format import fmt_duration, table
from dora_zenoh.cli.options import CONTEXT, endpoint_option


@click.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@endpoint_option
def machines(as_json: bool, endpoint: str | None) -> None:
    """The machines whose daemon joined the coordinator: connected or lost, since when, their last
    report, labels and the running dataflows with nodes there (what `deploy:` can name)."""
    with _client(endpoint) as client:
        rows = client.call("machines")["machines"]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no daemon has joined this coordinator (`dora-zenoh up` starts this machine's; on another "
                   "machine run `dora-zenoh daemon --machine-id ID --coordinator ENDPOINT --listen ...`)")
        return
    click.echo(table(["MACHINE", "STATUS", "FOR", "LAST REPORT", "PID", "LABELS", "DATAFLOWS", "NODES"], [[
        m["machine"] + (" (here)" if m["home"] else ""), m["status"],
        fmt_duration(m["connected_for"] if m["status"] == "connected" else m["lost_for"] or 0),
        f"{m['report_age']:.1f}s ago" if m["report_age"] is not None else "-", str(m["pid"] or "-"),
        ",".join(f"{k}={v}" for k, v in sorted(m["labels"].items())) or "-",
        ", ".join(m["dataflows"]) or "-", str(m["nodes"])] for m in rows]))


COMMANDS = [machines]
