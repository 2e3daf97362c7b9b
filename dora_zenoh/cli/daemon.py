"""``dora-zenoh daemon``: the agent of one machine of a multi-machine dataflow."""
from __future__ import annotations

import os
from pathlib import Path

import click

from dora_zenoh import console, settings
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, Endpoint


@click.command(context_settings=CONTEXT)
@click.option("--machine-id", required=True, envvar=settings.MACHINE_ID.name, show_envvar=True,
              help="This machine's id, as `deploy: {machine: ID}` names it.")
@click.option("--coordinator", "coordinator_endpoint", required=True, envvar=settings.COORDINATOR.name, type=Endpoint(),
              show_envvar=True, help="The coordinator's Zenoh endpoint, e.g. tls/192.168.1.10:7447.")
@click.option("--listen", envvar=settings.DAEMON_LISTEN.name, show_envvar=True, type=Endpoint(),
              help="This machine's hub endpoint, on an address the other machines reach, "
                   "e.g. tls/192.168.1.20:7448  [default: port 7448 on 127.0.0.1].")
@click.option("--labels", envvar=settings.DAEMON_LABELS.name, show_envvar=True,
              help="This machine's labels, e.g. gpu=true,arch=arm64: nodes whose `deploy: {labels: ...}` "
                   "asks for them may be placed here.")
@click.option("--insecure-tcp", is_flag=True, envvar=settings.INSECURE_TCP.name, show_envvar=True,
              help="Allow plain tcp/ endpoints off this machine (no encryption, no authentication).")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Where copies of dataflow folders shipped from the coordinator are kept  "
                   "[default: $XDG_STATE_HOME/dora-zenoh/daemon-ID/files].")
def daemon(machine_id: str, coordinator_endpoint: str, listen: str | None, labels: str | None,
           insecure_tcp: bool, cache_dir: Path | None) -> None:
    """Run this machine's daemon in the foreground (for systemd): it hosts the machine's Zenoh hub,
    and spawns and supervises the nodes that `deploy: {machine: ID}` places here."""
    from dora_zenoh.daemon.agent import main as serve
    from dora_zenoh.descriptor.placement import parse_labels
    from dora_zenoh.descriptor.rules.deploy import MACHINE_ID
    from dora_zenoh.wire.zconfig import is_network_endpoint

    if not MACHINE_ID.match(machine_id):
        raise CliError(f"--machine-id {machine_id!r}: use letters, digits, '_', '.', '-'")
    try:
        label_map = parse_labels(labels or "")
    except ValueError as exc:
        raise CliError(f"--labels {labels!r}: {exc}") from None
    listen = listen or settings.DAEMON_LISTEN.default
    if is_network_endpoint(coordinator_endpoint) and not is_network_endpoint(listen):
        # Its nodes would listen there too: unreachable from the other machines, and open to any
        # local user, whose links would reach the other machines' daemons through them.
        raise CliError(f"--listen {listen} is reachable from this machine only, but the coordinator "
                       f"{coordinator_endpoint} is on the network: give this machine's hub an address the other "
                       f"machines reach, e.g. --listen {coordinator_endpoint.partition('/')[0]}/ADDRESS:7448 "
                       "(see docs/machines.md)")
    for what, endpoint in (("--coordinator", coordinator_endpoint), ("--listen", listen)):
        proto = endpoint.partition("/")[0]
        if not is_network_endpoint(endpoint):
            continue
        if proto == "tls":
            if not (settings.TLS.get() or settings.ZENOH_CONFIG.get()):
                raise CliError(f"{what} {endpoint} is a TLS endpoint but no certificates are configured: make them "
                               f"with `dora-zenoh certs` and set {settings.TLS.name}, or set "
                               f"{settings.ZENOH_CONFIG.name} to a Zenoh config with transport/link/tls "
                               "(see docs/machines.md)")
        elif proto in ("tcp", "udp"):
            if not (insecure_tcp or settings.INSECURE_NETWORK.get()):
                raise CliError(f"{what} {endpoint} sends the dataflow's data off this machine unencrypted and "
                               "unauthenticated: use a tls/ endpoint (see docs/machines.md), or pass "
                               "--insecure-tcp on a network you trust")
            # the security layer's opt-out, for this daemon's sessions and its nodes' (it warns once each)
            os.environ[settings.INSECURE_NETWORK.name] = "1"
            if what == "--coordinator":  # its commands come that way, unauthenticated
                console.warn(f"daemon '{machine_id}' takes the coordinator's commands over plain {proto}: anyone "
                             f"who can reach {endpoint} or {listen} can start programs here as this user")
    raise click.exceptions.Exit(serve(machine_id, coordinator_endpoint, listen,
                                      cache_dir.resolve() if cache_dir else None, label_map))


COMMANDS = [daemon]
