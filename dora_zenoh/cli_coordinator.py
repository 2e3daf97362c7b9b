"""The coordinator's commands of the ``dora-zenoh`` CLI: up, down, coordinator, start, stop,
restart, list, logs, clean.

Kept apart from ``cli.py`` (``run``/``check``) so the two evolve independently; ``cli.py``
registers them. Every command talks to the coordinator over Zenoh (``control.Client``).
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from dora_zenoh.cli import CONTEXT, Duration, cpu_latency_option, load_or_exit

ENDED = ("succeeded", "failed", "stopped")

endpoint_option = click.option(
    "--endpoint", envvar="DORA_ZENOH_ENDPOINT", show_envvar=True,
    help="The coordinator's Zenoh endpoint  [default: tcp/127.0.0.1:7447].")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@contextmanager
def _client(endpoint: str | None) -> Iterator[Any]:
    """A control client; any ControlError becomes a clear message and exit 1."""
    from dora_zenoh.control import Client, ControlError

    try:
        with Client(endpoint) as client:
            yield client
    except ControlError as exc:
        _fail(str(exc))


def _endpoint(endpoint: str | None) -> str:
    from dora_zenoh import zconfig

    return endpoint or zconfig.default_endpoint()


# -- formatting ----------------------------------------------------------------------------------
def fmt_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_bytes(n: int) -> str:
    if not n:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headers, *rows]]
    return "\n".join(lines)


# -- the coordinator process -----------------------------------------------------------------------
def _state_dir() -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "dora-zenoh"
    try:
        base.mkdir(parents=True, exist_ok=True)
        return base
    except OSError:
        return Path("/tmp")


@click.command(context_settings=CONTEXT)
@endpoint_option
def coordinator(endpoint: str | None) -> None:
    """Run the coordinator in the foreground (for systemd); `up` starts it in the background."""
    from dora_zenoh.coordinator import main as serve

    sys.exit(serve(endpoint))


@click.command(context_settings=CONTEXT)
@endpoint_option
@click.option("--log-file", type=click.Path(path_type=Path),
              help="Where the coordinator's own output goes  [default: ~/.local/state/dora-zenoh/].")
def up(endpoint: str | None, log_file: Path | None) -> None:
    """Start the coordinator in the background (it hosts the Zenoh hub on the endpoint)."""
    from dora_zenoh import zconfig
    from dora_zenoh.control import coordinator_running

    endpoint = _endpoint(endpoint)
    info = coordinator_running(endpoint)
    if info:
        click.echo(f"coordinator already running on {endpoint} (pid {info['pid']})")
        return
    if zconfig.tcp_port_in_use(endpoint):
        _fail(f"{endpoint} is in use by another program (a `dora-zenoh run`?); pick another with --endpoint")
    log_file = log_file or _state_dir() / f"coordinator-{endpoint.rsplit(':', 1)[-1]}.log"
    with open(log_file, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dora_zenoh", "coordinator", "--endpoint", endpoint],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace").splitlines()[-5:]
            _fail("the coordinator did not start:\n" + "\n".join(f"    {t}" for t in tail))
        info = coordinator_running(endpoint, timeout=1.0)
        if info:
            click.echo(f"coordinator running on {endpoint} (pid {info['pid']}); its log: {log_file}")
            return
        time.sleep(0.1)
    _fail(f"the coordinator (pid {proc.pid}) did not answer within 15 s; see {log_file}")


@click.command(context_settings=CONTEXT)
@endpoint_option
@click.option("--grace", type=Duration(), help="Grace period for every dataflow (default: each one's own).")
def down(endpoint: str | None, grace: float | None) -> None:
    """Stop every dataflow gracefully, then the coordinator."""
    import psutil

    with _client(endpoint) as client:
        reply = client.call("down", grace=grace)
    pid = reply["pid"]
    click.echo(f"stopping {reply['stopping']} dataflow(s), then the coordinator (pid {pid})")
    deadline = time.monotonic() + (grace if grace is not None else 10) + 40
    try:
        proc = psutil.Process(pid)
        proc.wait(max(1.0, deadline - time.monotonic()))
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        _fail(f"the coordinator (pid {pid}) is still stopping its dataflows; `kill {pid}` to force it")
    click.echo("coordinator stopped")


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
@cpu_latency_option
@endpoint_option
def start(file: Path, name: str | None, attach: bool, grace: float, log_dir: Path | None,
          cpu_latency_us: int | None, endpoint: str | None) -> None:
    """Validate a dataflow (as `check` does), then start it on the coordinator."""
    from dora_zenoh.runner import sanitize_name

    desc = load_or_exit(file)  # nothing is sent if the YAML has a problem
    wanted = sanitize_name(name or desc.name or desc.path.stem)
    with _client(endpoint) as client:
        events: queue.SimpleQueue = queue.SimpleQueue()
        subs = []
        if attach:
            import zenoh

            from dora_zenoh import keys

            for kind, key in (("log", keys.log_key(wanted, "*")), ("done", keys.done_key(wanted))):
                subs.append(client.session.declare_subscriber(key, zenoh.handlers.Callback(
                    lambda s, k=kind: events.put((k, s)), indirect=False)))
        reply = client.call("start", timeout=60, path=str(desc.path), name=wanted, grace=grace,
                            log_dir=str(Path(log_dir).resolve()) if log_dir else None,
                            cpu_latency_us=cpu_latency_us)
        click.echo(f"[dora-zenoh] dataflow '{reply['name']}' started (id {reply['id']}): {reply['nodes']} "
                   f"node(s); logs in {reply['log_dir']}", err=True)
        if attach:
            sys.exit(_attach(client, reply["id"], events))


def _attach(client: Any, flow_id: str, events: queue.SimpleQueue) -> int:
    """Print the dataflow's log lines until it ends; Ctrl-C stops it (twice: kills it)."""
    from dora_zenoh.control import ControlError

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
                click.echo(f"error: lost the coordinator: {exc}", err=True)
                return 1
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
            if msg.get("shown") is not None:  # what `run` would print for this line
                click.echo(msg["shown"], err=msg.get("stderr", False))
        else:
            return _report(msg)


def _report(row: dict[str, Any]) -> int:
    click.echo(row.get("summary") or f"dataflow '{row['name']}' {row['status']}", err=True)
    return 0 if row["status"] in ("succeeded", "stopped") else 1


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
                sys.exit(_report(row))
            time.sleep(0.2)
    _fail(f"dataflow '{target}' is still stopping")


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="NAME|ID")
@click.option("--grace", type=Duration(), help="How long nodes get after STOP (default: the dataflow's own).")
@endpoint_option
def restart(target: str, grace: float | None, endpoint: str | None) -> None:
    """Stop a dataflow (if running) and start it again from the same YAML, same name."""
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
    with _client(endpoint) as client:
        reply = client.call("list", target=target)
    if as_json:
        click.echo(json.dumps(reply.get("dataflow") or reply.get("dataflows"), indent=2))
        return
    if target is None:
        rows = [[d["name"], d["id"], d["status"], fmt_duration(d["uptime"]), str(d["nodes"]),
                 f"{d['cpu']:.1f}", fmt_bytes(d["rss"])] for d in reply["dataflows"]]
        if not rows:
            click.echo("no dataflows (start one with `dora-zenoh start FILE`)")
            return
        click.echo(table(["NAME", "ID", "STATUS", "UPTIME", "NODES", "CPU%", "RSS"], rows))
        return
    d = reply["dataflow"]
    click.echo(f"{d['name']} ({d['id']}): {d['status']}, up {fmt_duration(d['uptime'])}, "
               f"{d['cpu']:.1f}% CPU, {fmt_bytes(d['rss'])}; logs: {d['log_dir']}")
    rows = []
    for n in d["nodes"]:
        sent = ", ".join(f"{o}={c}" for o, c in sorted(n["sent"].items())) or "-"
        rows.append([n["id"], str(n["pid"] or "-"), n["status"], str(n["restarts"]),
                     f"{n['cpu']:.1f}" if n["pid"] else "-", fmt_bytes(n["rss"]), sent])
    click.echo(table(["NODE", "PID", "STATUS", "RESTARTS", "CPU%", "RSS", "SENT"], rows))
    if d["status"] in ENDED and d.get("summary"):
        click.echo(d["summary"])


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="NAME|ID")
@click.argument("node")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the dataflow ends.")
@click.option("--tail", "-n", type=int, help="Only the last N lines.")
@endpoint_option
def logs(target: str, node: str, follow: bool, tail: int | None, endpoint: str | None) -> None:
    """A node's log: the same lines `run` shows, kept after the node has ended."""
    import zenoh

    from dora_zenoh import keys

    with _client(endpoint) as client:
        events: queue.SimpleQueue = queue.SimpleQueue()
        subs = []
        if follow:  # subscribed before asking, so no line falls between the two
            for kind, key in (("log", keys.log_key("*", node)), ("done", keys.done_key("*"))):
                subs.append(client.session.declare_subscriber(key, zenoh.handlers.Callback(
                    lambda s, k=kind: events.put((k, s)), indirect=False)))
        reply = client.call("logs", target=target, node=node, tail=tail)
        for line in reply["lines"]:
            click.echo(line)
        if not follow or not reply["active"]:
            return
        seen = reply["count"]
        signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
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


@click.command(context_settings=CONTEXT)
@endpoint_option
def clean(endpoint: str | None) -> None:
    """Forget the dataflows that have ended (their log files stay)."""
    with _client(endpoint) as client:
        reply = client.call("clean")
    click.echo(f"removed {reply['removed']} ended dataflow(s)")


COMMANDS = [up, down, coordinator, start, stop, restart, list_, logs, clean]
