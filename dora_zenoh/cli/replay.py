"""``dora-zenoh replay``: publish a recording again, in place of the nodes that produced it."""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT, Duration, Endpoint, load_or_exit


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("topics", nargs=-1, metavar="[TOPIC ...]")
@click.option("--dataflow", "yaml", type=click.Path(path_type=Path),
              help="Run this dataflow live, with the --replace nodes played from the recording instead.")
@click.option("--replace", "replaced", multiple=True, metavar="NODE",
              help="A node whose recorded outputs are replayed (it is not started); repeat for several.")
@click.option("--rate", type=float, default=1.0, show_default=True, help="Speed factor: 2 plays twice as fast.")
@click.option("--loop", is_flag=True, help="Start again at the end, until Ctrl-C.")
@click.option("--start", type=Duration(), help="Skip the recording's first S (e.g. 5s).")
@click.option("--end", type=Duration(), help="Stop at E after the recording's start.")
@click.option("--name", help="Dataflow name to publish to (default: the recorded one; with --dataflow, "
                             "the YAML's).")
@click.option("--endpoint", type=Endpoint(), help="Zenoh endpoint: of the running dataflow's hub, or with --dataflow the hub "
                                 "to listen on  [default: $DORA_ZENOH_ENDPOINT or tcp/127.0.0.1:7447].")
@click.option("--quiet", "-q", is_flag=True, help="Don't echo node output (with --dataflow).")
@click.option("--stats", is_flag=True, help="At the end, print the timing in full: how late each message went out "
                                            "(p50/p90/p99/p99.9/max), what put() took, the player's CPU.")
@click.option("--realtime", is_flag=True, help="Play with real-time priority (SCHED_FIFO; needs root or "
                                               "CAP_SYS_NICE): on time even on a busy machine.")
def replay(file: Path, topics: tuple[str, ...], yaml: Path | None, replaced: tuple[str, ...], rate: float,
           loop: bool, start: float | None, end: float | None, name: str | None, endpoint: str | None,
           quiet: bool, stats: bool, realtime: bool) -> None:
    """Publish a recording at its recorded timing (scaled by --rate), byte for byte.

    With --dataflow, the YAML's other nodes run live and the --replace nodes are played from
    the file (like dora's `replay --replace`); without it, the messages go onto a running
    dataflow's keys. TOPIC (node/output) limits what is played.
    """
    from dora_zenoh.record import reader
    from dora_zenoh.record.player import select, wanted

    if not rate > 0:  # (nan too)
        raise CliError(f"--rate must be a number above 0, not {rate}")
    if replaced and yaml is None:
        raise CliError("--replace needs --dataflow YAML (the dataflow whose nodes the recording replaces)")
    channels = reader.check(file)  # a truncated file fails here, before anything runs
    nodes = set(replaced) if yaml else None
    chosen = [(k, s) for k, s in channels if wanted(k, s, list(topics) or None, nodes)]

    def messages() -> Any:  # streamed from the file, again for each --loop round
        return select(reader.read(file), topics=list(topics) or None, nodes=nodes, start=start, end=end)

    play = {"rate": rate, "loop": loop, "realtime": realtime}
    if yaml is not None:
        result = _replay_in_dataflow(file, yaml, list(replaced), messages, chosen, play, name, endpoint, quiet, stats)
    else:
        _replay_onto_keys(file, messages, chosen, play, name, endpoint, stats)
        result = None
    if result is not None:
        raise click.exceptions.Exit(0 if result.ok else 1)


def _report(result: Any, stats: bool) -> None:
    click.echo(result.summary(), err=True)
    if stats:
        click.echo(result.stats(), err=True)
    if result.realtime and result.realtime != "SCHED_FIFO":
        click.echo(f"[dora-zenoh] warning: --realtime: played with {result.realtime}", err=True)


def _on_interrupt(*stops: Any) -> None:
    from dora_zenoh.signals import on_signals

    def handler(signum: int) -> None:
        for stop in stops:
            stop()

    on_signals(handler, signal.SIGINT, signal.SIGTERM)


def _replay_onto_keys(file: Path, messages: Any, chosen: list, play: dict, name: str | None,
                      endpoint: str | None, stats: bool) -> None:
    import zenoh

    from dora_zenoh.record.player import Player
    from dora_zenoh.security.ctl_client import join
    from dora_zenoh.wire import keys, zconfig

    if not chosen:
        raise CliError(f"nothing to replay in {file} (check TOPIC)")
    # A closed dataflow of the coordinator (the default) lives on its own network: the player
    # joins it as one of its own (it published on the coordinator's, where no node reads)
    key, source = chosen[0]  # (prefix/dataflow/node/output, node/output)
    target = name or key[:-len(source) - 1].rsplit("/", 1)[-1]
    hub = join(endpoint, target, member=True) or zconfig.default_endpoint()
    with zenoh.open(zconfig.peer_config([hub], [zconfig.node_listen_endpoint(hub)])) as session:
        def key_of(key: str, source: str) -> str:
            if not name:
                return key
            return keys.data_key(key.split("/", 1)[0], name, source)

        player = Player(session, messages, key_of, chosen, **play)
        _on_interrupt(player.stop)
        if not player.wait_for_subscribers(2.0):
            click.echo("[dora-zenoh] warning: some topics have no subscriber yet; playing anyway", err=True)
        result = player.play()
    _report(result, stats)


def _replay_in_dataflow(file: Path, yaml: Path, replaced: list[str], messages: Any, chosen: list, play: dict,
                        name: str | None, endpoint: str | None, quiet: bool, stats: bool) -> Any:
    import zenoh

    from dora_zenoh.record.player import Player, StandIn, replace_nodes
    from dora_zenoh.supervision.run import DataflowRun, RunOptions
    from dora_zenoh.wire import keys, zconfig
    from dora_zenoh.wire.contract import barrier_timeout_for

    desc = load_or_exit(yaml)
    ids = {n.id for n in desc.nodes}
    if not replaced:
        raise CliError("name the nodes the recording replaces: --replace NODE (repeat for several)")
    unknown = [n for n in replaced if n not in ids]
    if unknown:
        raise CliError(f"--replace {', '.join(unknown)}: no such node in {yaml} (nodes: {', '.join(sorted(ids))})")
    recorded = {source.split("/", 1)[0] for _, source in chosen}
    for node in replaced:
        if node not in recorded:
            click.echo(f"[dora-zenoh] warning: {file} has no messages of node '{node}' to replay", err=True)
    flow = DataflowRun(replace_nodes(desc, replaced), RunOptions(name=name, endpoint=endpoint, echo=not quiet))
    try:
        flow.start()
    except Exception as exc:
        raise CliError(str(exc)) from None
    done: list[Any] = []
    waiter = threading.Thread(target=lambda: done.append(flow.wait()), daemon=True)
    waiter.start()
    click.echo(f"[dora-zenoh] dataflow '{flow.dataflow}' on {flow.node_endpoint}: {len(flow.procs)} live "
               f"node(s), replaying {', '.join(replaced)} from {file}", err=True)
    hub = flow.node_endpoint
    secret = str(flow.secret) if flow.secret else None  # a closed run: the player is one of its own
    with zenoh.open(zconfig.peer_config([hub], [zconfig.node_listen_endpoint(hub)], secret)) as session:
        standin = StandIn(session, desc, flow.dataflow, replaced)
        player = Player(session, messages, lambda key, source: keys.data_key(desc.prefix, flow.dataflow, source),
                        chosen, **play)
        _on_interrupt(player.stop, flow.stop)
        missing = standin.wait_for_readers(desc, 30.0)
        if missing:
            click.echo(f"[dora-zenoh] warning: {', '.join(missing)} did not start within 30 s; playing anyway",
                       err=True)
        # The readers take their inputs only once every node started (the start gate): what is played
        # before would fill their queues (the runner names any node that is late).
        flow.wait_started(barrier_timeout_for(len(desc.nodes)))
        player.wait_for_subscribers(5.0)

        def stop_when_the_nodes_end() -> None:
            waiter.join()
            player.stop()

        stopper = threading.Thread(target=stop_when_the_nodes_end, daemon=True)
        stopper.start()  # the live nodes all ended (a crash): stop playing
        result = player.play()
        standin.finish(result.sent, lambda n, o: keys.data_key(desc.prefix, flow.dataflow, f"{n}/{o}"),
                       flow.end_stand_in)
        waiter.join()
    _report(result, stats)
    run_result = done[0]
    click.echo(run_result.summary(), err=True)
    return run_result


COMMANDS = [replay]
