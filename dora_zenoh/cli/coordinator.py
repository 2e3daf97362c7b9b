"""``dora-zenoh up``, ``down`` and ``coordinator``: the coordinator's life cycle."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import click

from dora_zenoh import settings
from dora_zenoh.cli._common import _client, _endpoint
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, Duration, endpoint_option
from dora_zenoh.errors import NotAuthorizedError
from dora_zenoh.supervision.paths import state_dir

group_option = click.option(
    "--group", envvar=settings.GROUP.name, show_envvar=True, metavar="NAME",
    help="Also let members of this Unix group operate the coordinator (by default only its own user and "
         "root may). Members can then start programs as the coordinator's user: see docs/security.md.")

home_option = click.option(
    "--machine-id", "home", metavar="ID",
    help="This machine's id: the nodes without `deploy` run on its daemon, so they keep running if the "
         "coordinator dies. `up` starts that daemon, by default with $DORA_ZENOH_MACHINE_ID or the host's "
         "name; `coordinator` has none unless given one (systemd runs the daemon as a unit of its own).")


@click.command(context_settings=CONTEXT)
@endpoint_option
@group_option
@home_option
@click.option("--daemon-log", "home_log", type=click.Path(path_type=Path), hidden=True,
              help="(`up`'s) start the daemon of --machine-id again, logging here, when its process dies.")
def coordinator(endpoint: str | None, group: str | None, home: str | None, home_log: Path | None) -> None:
    """Run the coordinator in the foreground (for systemd); `up` starts it in the background."""
    from dora_zenoh import console
    from dora_zenoh.supervision.client import coordinator_running
    from dora_zenoh.supervision.coordinator import main as serve

    # Asked here, not by the coordinator: the server does not import its own client. A port
    # in use by anything else is the coordinator's to report (it cannot listen there).
    endpoint = _endpoint(endpoint)
    try:
        info = coordinator_running(endpoint, timeout=2.0)
    except NotAuthorizedError as exc:
        raise CliError(f"{endpoint} is taken by another user's coordinator: {exc}") from None
    if info:
        console.note(f"a coordinator is already running on {endpoint} (pid {info['pid']})")
        raise click.exceptions.Exit(1)
    _check_machine_id(home)
    raise click.exceptions.Exit(serve(endpoint, group, home, home_log))


@click.command(context_settings=CONTEXT)
@endpoint_option
@group_option
@home_option
@click.option("--no-daemon", is_flag=True,
              help="Only the coordinator: it runs the nodes without `deploy` itself (no extra process), and "
                   "they end with it.")
@click.option("--log-file", type=click.Path(path_type=Path),
              help="Where the coordinator's own output goes  [default: ~/.local/state/dora-zenoh/].")
def up(endpoint: str | None, group: str | None, home: str | None, no_daemon: bool, log_file: Path | None) -> None:
    """Start the coordinator in the background (it hosts the Zenoh hub on the endpoint) and this
    machine's daemon, which runs the nodes so that they outlive the coordinator."""
    from dora_zenoh.supervision import home as home_mod
    from dora_zenoh.supervision.client import coordinator_running as running
    from dora_zenoh.wire import zconfig

    def coordinator_running(endpoint: str, timeout: float = 2.0) -> dict | None:
        try:
            return running(endpoint, timeout)
        except NotAuthorizedError as exc:  # another user's coordinator
            raise CliError(str(exc)) from None

    if home is not None and no_daemon:
        raise CliError("--machine-id names the daemon that --no-daemon declines: pick one")
    asked = home is not None or no_daemon  # else: follow a running coordinator's choice
    home = None if no_daemon else home or home_mod.machine_id()
    endpoint = _endpoint(endpoint)
    _check_machine_id(home)
    log_file = log_file or state_dir() / f"coordinator-{endpoint.rsplit(':', 1)[-1]}.log"
    info = coordinator_running(endpoint)
    if info:
        click.echo(f"coordinator already running on {endpoint} (pid {info['pid']})")
        if asked and info.get("home") != home:
            was = f"with --machine-id '{info['home']}'" if info.get("home") else "with --no-daemon"
            now = f"--machine-id '{home}'" if home else "--no-daemon"
            raise CliError(f"it was started {was}, not {now}: `dora-zenoh down` first to change it")
        if info.get("home"):
            _up_daemon(endpoint, info["home"], log_file)
        return
    if zconfig.tcp_port_in_use(endpoint):
        raise CliError(f"{endpoint} is in use by another program (a `dora-zenoh run`?); "
                       "pick another with --endpoint")
    _, info = _background(["coordinator", "--endpoint", endpoint, *(["--group", group] if group else []),
                           *(["--machine-id", home, "--daemon-log", str(home_mod.log_path(log_file, home, endpoint))]
                             if home else [])], log_file, "the coordinator",
                          lambda: coordinator_running(endpoint, timeout=1.0), "did not answer")
    click.echo(f"coordinator running on {endpoint} (pid {info['pid']}); its log: {log_file}")
    if home:
        _up_daemon(endpoint, home, log_file)


def _background(args: list[str], log_file: Path, what: str, ready: Callable[[], dict | None],
                late: str) -> tuple[subprocess.Popen, dict]:
    """``python -m dora_zenoh ARGS`` detached, its output appended to ``log_file``; returns once
    ``ready()`` answers (15 s at most), or says why it did not start."""
    from dora_zenoh.supervision import home as home_mod

    try:
        log = open(log_file, "ab")  # noqa: SIM115 (closed below, once the child holds it)
    except OSError as exc:
        raise CliError(f"cannot write {what}'s log {log_file} ({exc.strerror}); "
                       "pass --log-file with a file you can write") from None
    with log:
        proc = home_mod.detached(args, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace").splitlines()[-5:]
            raise CliError(f"{what} did not start:\n" + "\n".join(f"    {t}" for t in tail))
        info = ready()
        if info:
            return proc, info
        time.sleep(0.1)
    raise CliError(f"{what} (pid {proc.pid}) {late} within 15 s; see {log_file}")


def _check_machine_id(home: str | None) -> None:
    from dora_zenoh.descriptor.rules.deploy import MACHINE_ID

    if home is not None and not MACHINE_ID.match(home):
        raise CliError(f"--machine-id {home!r}: use letters, digits, '_', '.', '-'")


def _up_daemon(endpoint: str, home: str, coordinator_log: Path) -> None:
    """This machine's daemon, unless it is connected already (a coordinator started again: its
    daemon links back by itself within a second and the coordinator adopts its dataflows)."""
    from dora_zenoh.supervision import home as home_mod
    from dora_zenoh.supervision.client import coordinator_running

    def connected(wait: float) -> dict | None:
        deadline = time.monotonic() + wait
        while True:
            info = coordinator_running(endpoint, timeout=1.0)
            if info and home in info.get("daemons", []):
                return info
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    running = home_mod.find(endpoint, home)
    if running is not None:  # one of an earlier `up` (or the coordinator's): it links back within a second or so
        info = connected(5.0)
        if info is None:
            raise CliError(f"the daemon of machine '{home}' (pid {running}) runs but did not join the coordinator "
                           f"within 5 s: see its log, or `kill {running}` and `dora-zenoh up` again")
        click.echo(f"daemon of machine '{home}' running (pid {info.get('home_pid') or running})")
        return
    log_file = home_mod.log_path(coordinator_log, home, endpoint)
    proc, _ = _background(home_mod.arguments(home, endpoint), log_file, f"the daemon of machine '{home}'",
                          lambda: connected(0.0), "did not join the coordinator")
    click.echo(f"daemon of machine '{home}' running (pid {proc.pid}); its log: {log_file}")


@click.command(context_settings=CONTEXT)
@endpoint_option
@click.option("--grace", type=Duration(), help="Grace period for every dataflow (default: each one's own).")
def down(endpoint: str | None, grace: float | None) -> None:
    """Stop every dataflow gracefully, then the coordinator."""
    import psutil

    from dora_zenoh.supervision.client import coordinator_running

    if coordinator_running(endpoint) is None:  # nothing to bring down is not an error (scripts, CI teardown)
        click.echo(f"no coordinator is running on {_endpoint(endpoint)}: nothing to stop")
        return
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
        raise CliError(f"the coordinator (pid {pid}) is still stopping its dataflows; "
                       f"`kill {pid}` to force it") from None
    click.echo("coordinator stopped")
    if reply.get("home_pid"):  # `up --machine-id`'s daemon: its dataflows were stopped above
        _stop_daemon(reply["home"], reply["home_pid"])


def _stop_daemon(home: str, pid: int) -> None:
    import psutil

    from dora_zenoh.supervision import home as home_mod

    if not home_mod.is_daemon(pid, home):
        return  # gone, or not that daemon any more (a pid used again)
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        proc.wait(30)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        raise CliError(f"the daemon of machine '{home}' (pid {pid}) is still stopping; `kill {pid}` to force it") from None
    click.echo(f"daemon of machine '{home}' stopped")


COMMANDS = [up, down, coordinator]
