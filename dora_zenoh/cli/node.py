"""``dora-zenoh node list`` / ``node info NODE``: the nodes of running dataflows, as they report themselves."""
from __future__ import annotations

import json
import time
from typing import Any

import click

from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.format import fmt_bytes, table
from dora_zenoh.cli.options import CONTEXT, Duration, endpoint_option
from dora_zenoh.cli.topic import dataflow_option, json_option, observer


def fmt_cpu(cpu: float | None) -> str:
    """Two significant digits below 10% (an idle node shows 0.3, not 0.0), one above."""
    if cpu is None:
        return "-"
    return f"{cpu:.2f}" if cpu < 10 else f"{cpu:.1f}"


def several_machines(found: list[Any]) -> bool:
    """Whether the rows span machines (then tables get a MACHINE column; one machine: none)."""
    return len({r.machine for r in found}) > 1


def collect(session: Any, dataflow: str | None, interval: float, endpoint: str | None = None) -> list[Any]:
    """Two snapshots ``interval`` apart: counters, rates and CPU over that interval."""
    from dora_zenoh.introspect.discovery import wait_snapshot
    from dora_zenoh.introspect.usage import CpuSampler, Unreachable, rows, supervisor_rows

    cpu = CpuSampler()
    with Unreachable(endpoint, dataflow) as skip:  # a partition: not waited for; shown as the coordinator knows them
        first = wait_snapshot(session.client, dataflow, skip=skip)
        cpu.prime([n.pid for n in first.nodes.values() if n.pid])
        t0 = time.monotonic()
        time.sleep(interval)
        second = wait_snapshot(session.client, dataflow, timeout=3.0, skip=skip)
    dt = time.monotonic() - t0
    sup = supervisor_rows(session.client, list(second.dataflows()), endpoint)
    return rows(second, cpu, first, dt, sup)


@click.group(context_settings=CONTEXT)
def node() -> None:
    """The nodes of running dataflows (started by `run` or by the coordinator)."""


@node.command("list", context_settings=CONTEXT)
@dataflow_option
@click.option("--interval", type=Duration(positive=True), default="500ms", show_default=True,
              help="How long rates and CPU are measured over (e.g. 2s).")
@json_option
@endpoint_option
def list_(dataflow: str | None, interval: float, as_json: bool, endpoint: str | None) -> None:
    """Every node: status, pid, CPU, RSS, messages sent/received, drops."""
    with observer(endpoint, dataflow) as session:
        found = collect(session, dataflow, interval, endpoint)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in found], indent=2))
        return
    if not found:
        click.echo("no running nodes" + (f" in dataflow '{dataflow}'" if dataflow else ""))
        return
    machines = several_machines(found)
    click.echo(table(["DATAFLOW", "NODE", *(["MACHINE"] if machines else []), "STATUS", "PID", "CPU%", "RSS",
                      "SENT", "RECEIVED", "DROPPED"],
                     [[r.dataflow, r.id, *([r.machine or "-"] if machines else []), r.status, str(r.pid or "-"),
                       fmt_cpu(r.cpu), fmt_bytes(r.rss or 0), str(r.sent), str(r.received), str(r.dropped)]
                      for r in found]))


@node.command(context_settings=CONTEXT)
@click.argument("name", metavar="NODE")
@dataflow_option
@click.option("--interval", type=Duration(positive=True), default="500ms", show_default=True,
              help="How long rates and CPU are measured over (e.g. 2s).")
@json_option
@endpoint_option
def info(name: str, dataflow: str | None, interval: float, as_json: bool, endpoint: str | None) -> None:
    """One node: inputs with their sources, outputs with their readers, pid, status, restarts, CPU, RSS, drops."""
    with observer(endpoint, dataflow) as session:
        found = [r for r in collect(session, dataflow, interval, endpoint) if r.id == name]
    if not found:
        raise CliError(f"no running node '{name}'" + (f" in dataflow '{dataflow}'" if dataflow else "")
                       + " (see `dora-zenoh node list`)")
    if len(found) > 1:
        raise CliError(f"node '{name}' runs in several dataflows ({', '.join(r.dataflow for r in found)}): "
                       "pick one with -d DATAFLOW")
    r = found[0]
    if as_json:
        click.echo(json.dumps(r.as_dict(), indent=2))
        return
    click.echo(f"Node: {r.id}  (dataflow {r.dataflow})")
    click.echo(f"Status: {r.status}  pid {r.pid or '-'}  machine {r.machine or '-'}  "
               f"restarts {r.restarts if r.restarts is not None else '-'}")
    if r.measured_elsewhere:  # its machine's daemon measures it, for the coordinator
        click.echo(f"CPU, RSS: measured on machine '{r.machine}' (`dora-zenoh node info` on the coordinator's "
                   "machine shows them)")
    else:
        click.echo(f"CPU: {fmt_cpu(r.cpu)}%  RSS: {fmt_bytes(r.rss or 0)}")
    if r.status == "lost":  # nothing answers for it: its counters are not known, not zero
        click.echo("Messages, inputs, outputs: unknown (the node is lost: its machine or its daemon does not answer)")
        return
    rate = lambda v: f"{v:.1f}/s" if v is not None else "-"  # noqa: E731
    click.echo(f"Messages: sent {r.sent} ({rate(r.out_rate)}), received {r.received} ({rate(r.in_rate)}), "
               f"dropped {r.dropped}")
    click.echo("Inputs:" if r.inputs else "Inputs: none")
    for k, i in r.inputs.items():
        click.echo(f"  {k} <- {i['source']}: queue_size {i['queue_size']}, {i['policy']}, received "
                   f"{i['received']}, dropped {i['dropped']}, queued {i['queued']}")
    click.echo("Outputs:" if r.outputs else "Outputs: none")
    for k, o in r.outputs.items():
        click.echo(f"  {k} -> {', '.join(o['readers']) or '(no reader)'}: sent {o['sent']}")


COMMANDS = [node]
