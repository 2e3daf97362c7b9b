"""``dora-zenoh foxglove``: watch a dataflow live in Foxglove (WebSocket protocol)."""
from __future__ import annotations

import signal
import threading

import click

from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, Endpoint
from dora_zenoh.signals import on_signals


@click.command(context_settings=CONTEXT)
@click.argument("name", required=False, metavar="[DATAFLOW]")
@click.option("-d", "--dataflow", help="The dataflow to serve, as DATAFLOW does (default: every dataflow under "
                                       "the prefix).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="WebSocket port (0: any free port, printed).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; loopback by default (anyone who reaches it sees every message).")
@click.option("--prefix", default="dora", show_default=True, help="The key prefix of the dataflow.")
@click.option("--endpoint", type=Endpoint(), help="Zenoh endpoint of the dataflow's hub  [default: $DORA_ZENOH_ENDPOINT or "
                                 "tcp/127.0.0.1:7447].")
def foxglove(name: str | None, dataflow: str | None, port: int, host: str, prefix: str, endpoint: str | None) -> None:
    """Serve a dataflow's topics live over the Foxglove WebSocket protocol, until Ctrl-C.

    In Foxglove: Open connection, Foxglove WebSocket, ws://127.0.0.1:8765. Arrow data with
    an obvious JSON form also appears as <key>/@json, ready to plot.
    """
    from dora_zenoh.cli._common import closed_default
    from dora_zenoh.record.foxglove import FoxgloveBridge
    from dora_zenoh.security.ctl_client import join
    from dora_zenoh.wire import zconfig

    if name and dataflow and name != dataflow:
        raise CliError(f"two dataflows given ({name} and -d {dataflow}): give one")
    dataflow = dataflow or name  # positional, as `record NAME` takes it
    if dataflow is None:
        dataflow = closed_default(endpoint)
    endpoint = join(endpoint, dataflow)  # a closed dataflow: its own network, read-only
    bridge = FoxgloveBridge(endpoint=endpoint or zconfig.default_endpoint(), prefix=prefix, dataflow=dataflow,
                            host=host, port=port)
    done = threading.Event()

    on_signals(lambda _signum: done.set(), signal.SIGINT, signal.SIGTERM)
    click.echo(f"[dora-zenoh] serving {dataflow or prefix + '/**'} for Foxglove on {bridge.url}; Ctrl-C to stop",
               err=True)
    while not done.wait(0.2):
        pass
    bridge.close()
    lost = sum(bridge.drops.values())
    click.echo(f"[dora-zenoh] forwarded {bridge.sent} message(s)" + (f", dropped {lost}" if lost else ""), err=True)


COMMANDS = [foxglove]
