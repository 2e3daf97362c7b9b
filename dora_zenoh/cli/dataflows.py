"""``dora-zenoh start``, ``stop``, ``restart``, ``list``, ``logs``, ``clean``: dataflows on the coordinator.

Every command talks to the coordinator over Zenoh (:class:`dora_zenoh.supervision.client.Client`).
"""
from __future__ import annotations

import json
import queue
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dora_zenoh.cli._common import _client
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.format import fmt_bytes, fmt_duration, table
from dora_zenoh.cli.options import (
    CONTEXT,
    Duration,
    cpu_latency_option,
    endpoint_option,
    load_or_exit,
    secure_option,
)
from dora_zenoh.supervision.paths import sanitize_name
from dora_zenoh.supervision.results import ENDED, OK


# -- dataflows --------------------------------------------------------------------------------------
@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Dataflow name, unique among running dataflows (default: the YAML's name or file stem).")
@click.option("--attach/--detach", default=True, show_default=True,
              help="Stream the logs and wait for the result (Ctrl-C stops the dataflow), or return at once.")
@click.option("--grace", type=Duration(), default="10s", show_default=True,
              help="After STOP, how long nodes get before their process trees are terminated.")
@click.option("--log-dir", type=click.Path(path_type=Path),
              help="Where run logs go (default: out/ next to the YAML); each run gets out/<run-id>/.")
@click.option("--fail-fast", is_flag=True, help="Stop the whole dataflow when a node fails for good "
              "(default: the others go on, status 'degraded'); also the YAML's `fail_fast: true`.")
@click.option("--record", "record_to", type=click.Path(path_type=Path),
              help="Record every output into this MCAP file, from the first message (see `record`).")
@click.option("--build", "build_first", is_flag=True,
              help="Run each node's `build:` first, on the machine it runs on; a failure starts nothing. "
                   "(A node's copy of the files shipped to another machine is built once when made, without this.)")
@cpu_latency_option
@secure_option
@endpoint_option
def start(file: Path, name: str | None, attach: bool, grace: float, log_dir: Path | None, fail_fast: bool,
          record_to: Path | None, build_first: bool, cpu_latency_us: int | None, secure: bool | None,
          endpoint: str | None) -> None:
    """Validate a dataflow (as `check` does), then start it on the coordinator."""
    desc = load_or_exit(file)  # nothing is sent if the YAML has a problem
    wanted = sanitize_name(name or desc.name or desc.path.stem)
    if record_to is not None:
        from dora_zenoh.cli.record import prepare_run_record

        prepare_run_record(record_to)
    with _client(endpoint) as client:
        events: queue.SimpleQueue = queue.SimpleQueue()
        subs = []
        if attach:
            import zenoh

            from dora_zenoh.wire import keys

            for kind, key in (("log", keys.log_key(wanted, "*")), ("done", keys.done_key(wanted))):
                subs.append(client.session.declare_subscriber(key, zenoh.handlers.Callback(
                    _queue_as(events, kind), indirect=False)))
        # (up to 10 min more when files are shipped or builds run: supervision.ship.PREPARE_TIMEOUT)
        try:
            reply = client.call("start", timeout=660, path=str(desc.path), name=wanted, grace=grace,
                                build=build_first or None,
                                log_dir=str(Path(log_dir).resolve()) if log_dir else None,
                                cpu_latency_us=cpu_latency_us, fail_fast=fail_fast or None, secure=secure,
                                **({"record": str(record_to.resolve())} if record_to is not None else {}))
        except KeyboardInterrupt:  # Ctrl-C while it starts: it must not run on, unattached
            _cancel_start(client, wanted)
            raise click.exceptions.Exit(130) from None
        click.echo(f"[dora-zenoh] dataflow '{reply['name']}' started (id {reply['id']}): {reply['nodes']} "
                   f"node(s); logs in {reply['log_dir']}", err=True)
        if not attach:  # for scripts: ID=$(dora-zenoh start --detach FILE)
            click.echo(reply["id"])
        if attach:
            raise click.exceptions.Exit(_attach(client, reply["id"], events))


def _cancel_start(client: Any, name: str) -> None:
    """Stop (force) a dataflow whose start was interrupted; the coordinator undoes what started."""
    from dora_zenoh.supervision.client import ControlError

    click.echo(f"\n[dora-zenoh] interrupted: stopping dataflow '{name}', which was starting", err=True)
    try:
        client.call("stop", target=name, force=True)
    except ControlError:
        pass  # it did not get far enough to have a name: nothing runs


def _queue_as(events: queue.SimpleQueue, kind: str) -> Callable[[Any], None]:
    """A Zenoh callback that queues ``(kind, sample)`` for the command's thread."""
    return lambda sample: events.put((kind, sample))


def _attach(client: Any, flow_id: str, events: queue.SimpleQueue) -> int:
    """Print the dataflow's log lines until it ends; Ctrl-C stops it (twice: kills it)."""
    from dora_zenoh.supervision.client import ControlError

    interrupts = [0]
    handled = 0
    signal.signal(signal.SIGINT, lambda *_: interrupts.__setitem__(0, interrupts[0] + 1))
    while True:
        if interrupts[0] > handled:
            handled = interrupts[0]
            force = handled > 1
            click.echo("\n[dora-zenoh] " + ("killing" if force else "stopping (Ctrl-C again to kill)"), err=True)
            try:
                client.call("stop", target=flow_id, force=force)
            except ControlError:
                pass  # already ending
        try:
            kind, sample = events.get(timeout=1.0)
        except queue.Empty:
            try:
                row = client.call("list", timeout=5.0, target=flow_id)["dataflow"]
            except ControlError as exc:
                raise CliError(f"lost the coordinator: {exc}") from None
            if row["status"] in ENDED:
                return _report(row)
            continue
        try:
            msg = json.loads(sample.payload.to_bytes())
        except ValueError:
            continue
        if msg.get("id") != flow_id:
            continue
        if kind == "log":
            if msg.get("shown") is not None:  # what `run` would print for this line, coloured as there
                from dora_zenoh.console import colour_prefix, use_colour

                shown, err = msg["shown"], msg.get("stderr", False)
                if use_colour(sys.stderr if err else sys.stdout):
                    shown = colour_prefix(shown, str(sample.key_expr).rsplit("/", 1)[-1])
                click.echo(shown, err=err)
        else:
            return _report(msg)


def _report(row: dict[str, Any]) -> int:
    click.echo(row.get("summary") or f"dataflow '{row['name']}' {row['status']}", err=True)
    return 0 if row["status"] in OK and not row.get("unreached") else 1  # (unreached: a stop not delivered)


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="NAME|ID")
@click.option("--observer", is_flag=True, help="The read-only credentials (a viewer, a recorder).")
@endpoint_option
def join(target: str, observer: bool, endpoint: str | None) -> None:
    """How a process of yours reaches a running dataflow: the variables to set, for a shell's eval.

    A closed dataflow (`start --secure`, `secure: true`) lives on a network of its own; a dynamic
    node, a ROS-like script or a plain Zenoh tool needs its endpoint and credentials (the tools of
    this CLI find them by themselves with -d NAME). `eval "$(dora-zenoh join NAME)"`.
    """
    from dora_zenoh import settings

    with _client(endpoint) as client:
        where = client.call("join", target=target)
    click.echo(f"export {settings.ENDPOINT.name}={where['endpoint']}")
    if where.get("closed"):
        click.echo(f"export {settings.SECRET_FILE.name}={where['observer' if observer else 'credentials']}")
    else:
        click.echo(f"# '{target}' is open: its endpoint is the coordinator's, no credentials needed", err=True)


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="NAME|ID")
@click.option("--grace", type=Duration(), help="How long nodes get after STOP (default: the dataflow's own).")
@click.option("--force", is_flag=True, help="Kill every process tree at once instead of sending STOP.")
@endpoint_option
def stop(target: str, grace: float | None, force: bool, endpoint: str | None) -> None:
    """Stop a running dataflow (STOP to every node; killed after the grace period)."""
    with _client(endpoint) as client:
        reply = client.call("stop", target=target, grace=grace, force=force)
        click.echo(f"[dora-zenoh] stopping dataflow '{reply['name']}' ({reply['id']})", err=True)
        deadline = time.monotonic() + reply["grace"] + 30
        while time.monotonic() < deadline:
            row = client.call("list", target=reply["id"])["dataflow"]
            if row["status"] in ENDED:
                raise click.exceptions.Exit(_report(row))
            time.sleep(0.2)
    raise CliError(f"dataflow '{target}' is still stopping")


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="NAME|ID")
@click.option("--grace", type=Duration(), help="How long nodes get after STOP (default: the dataflow's own).")
@click.option("--detach", is_flag=True, help="Accepted as `start` takes it: restart always returns once started.")
@endpoint_option
def restart(target: str, grace: float | None, detach: bool, endpoint: str | None) -> None:
    """Stop a dataflow (if running) and start it again from the same YAML, same name; returns once
    it has started (`logs -f` follows it)."""
    with _client(endpoint) as client:
        reply = client.call("restart", timeout=(grace or 10) + 90, target=target, grace=grace)
    click.echo(f"[dora-zenoh] dataflow '{reply['name']}' restarted (id {reply['id']}): {reply['nodes']} "
               f"node(s); logs in {reply['log_dir']}", err=True)


@click.command("list", context_settings=CONTEXT)
@click.argument("target", metavar="[NAME|ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@endpoint_option
def list_(target: str | None, as_json: bool, endpoint: str | None) -> None:
    """Dataflows (running and ended) with status, uptime, CPU and memory; or one dataflow's nodes."""
    from dora_zenoh.cli.node import fmt_cpu
    from dora_zenoh.cli.runs import list_reply

    reply = list_reply(endpoint, target)  # the coordinator's dataflows and those of `run`
    if as_json:
        click.echo(json.dumps(reply.get("dataflow") or reply.get("dataflows"), indent=2))
        return
    if target is None:
        rows = [[d["name"], d["id"], d["status"], fmt_duration(d["uptime"]), str(d["nodes"]),
                 fmt_cpu(d["cpu"]), fmt_bytes(d["rss"])] for d in reply["dataflows"]]
        if not rows:
            if reply.get("machine_only"):
                click.echo(f"no dataflow runs nodes on machine '{reply['machine_only']}' (`dora-zenoh list` on the "
                           "coordinator's machine shows them all)")
                return
            if not reply.get("coordinator", True):
                from dora_zenoh.cli._common import _endpoint

                click.echo(f"no dataflows (no coordinator is running on {_endpoint(endpoint)}, and no "
                           "`dora-zenoh run` there either)")
                return
            click.echo("no dataflows (start one with `dora-zenoh start FILE` or `dora-zenoh run FILE`)")
            return
        click.echo(table(["NAME", "ID", "STATUS", "UPTIME", "NODES", "CPU%", "RSS"], rows))
        if reply.get("machine_only"):  # the answer of this machine's daemon (daemon.desk)
            click.echo(f"(the dataflows with nodes on machine '{reply['machine_only']}', and its nodes only: "
                       "`dora-zenoh list` on the coordinator's machine shows them all)")
        return
    d = reply["dataflow"]
    click.echo(f"{d['name']} ({d['id']}): {d['status']}, up {fmt_duration(d['uptime'])}, "
               f"{fmt_cpu(d['cpu'])}% CPU, {fmt_bytes(d['rss'])}; logs: {d['log_dir']}")
    rows = []
    machines = any(n.get("machine") for n in d["nodes"])  # a MACHINE column only when it says something
    for n in d["nodes"]:
        sent = ", ".join(f"{o}={c}" for o, c in sorted(n["sent"].items())) or "-"
        rows.append([n["id"], *([n.get("machine") or "(coordinator)"] if machines else []),
                     str(n["pid"] or "-"), n["status"], str(n["restarts"]),
                     fmt_cpu(n["cpu"]) if n["pid"] else "-",  # measured by the node's own machine
                     fmt_bytes(n["rss"]) if n["pid"] else "-", sent])
    click.echo(table(["NODE", *(["MACHINE"] if machines else []), "PID", "STATUS", "RESTARTS", "CPU%", "RSS",
                      "SENT"], rows))
    if d.get("machine_only"):  # the answer of this machine's daemon (daemon.desk)
        click.echo(f"(the nodes of machine '{d['machine_only']}' only: `dora-zenoh list {d['name']}` on the "
                   "coordinator's machine shows the whole dataflow)")
    if d["status"] in ENDED and d.get("summary"):
        click.echo(d["summary"])
        return
    # why a node is lost, failed or shown as last reported (a partition): the table cannot say
    notes: dict[tuple[str, str], list[str]] = {}
    for n in d["nodes"]:
        if n.get("detail"):
            notes.setdefault((n["status"], n["detail"]), []).append(n["id"])
    for (status, detail), ids in notes.items():
        click.echo(f"{', '.join(ids)} ({status}): {detail}")


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="NAME|ID")
@click.argument("node")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the dataflow ends.")
@click.option("--tail", "-n", type=int, help="Only the last N lines.")
@endpoint_option
def logs(target: str, node: str, follow: bool, tail: int | None, endpoint: str | None) -> None:
    """A node's log: the same lines `run` shows, kept after the node has ended."""
    import zenoh

    from dora_zenoh.cli.runs import follow_run_logs, run_logs
    from dora_zenoh.wire import keys

    ran = run_logs(endpoint, target, node, tail)  # a dataflow that `run` supervises answers itself
    if ran is not None:
        for line in ran["lines"]:
            click.echo(line)
        if follow:
            signal.signal(signal.SIGINT, _exit_quietly)
            follow_run_logs(endpoint, target, node, ran["count"],
                            click.echo)
        return
    with _client(endpoint) as client:
        events: queue.SimpleQueue = queue.SimpleQueue()
        subs = []
        if follow:  # subscribed before asking, so no line falls between the two
            for kind, key in (("log", keys.log_key("*", node)), ("done", keys.done_key("*"))):
                subs.append(client.session.declare_subscriber(key, zenoh.handlers.Callback(
                    _queue_as(events, kind), indirect=False)))
        reply = client.call("logs", target=target, node=node, tail=tail)
        for line in reply["lines"]:
            click.echo(line)
        if not follow or not reply["active"]:
            return
        seen = reply["count"]
        signal.signal(signal.SIGINT, _exit_quietly)
        while True:
            try:
                kind, sample = events.get(timeout=2.0)
            except queue.Empty:
                row = client.call("list", target=reply["id"])["dataflow"]
                if row["status"] in ENDED:
                    return
                continue
            try:
                msg = json.loads(sample.payload.to_bytes())
            except ValueError:
                continue
            if msg.get("id") != reply["id"]:
                continue
            if kind == "done":
                return
            if msg["n"] > seen:
                seen = msg["n"]
                click.echo(msg["line"])


def _exit_quietly(*_: Any) -> None:
    """Ctrl-C ends `logs -f` without a traceback: following is all it was doing."""
    raise click.exceptions.Exit(0)


@click.command(context_settings=CONTEXT)
@endpoint_option
def clean(endpoint: str | None) -> None:
    """Forget the dataflows that have ended (their log files stay)."""
    with _client(endpoint) as client:
        reply = client.call("clean")
    click.echo(f"removed {reply['removed']} ended dataflow(s)")


COMMANDS = [start, join, stop, restart, list_, logs, clean]
