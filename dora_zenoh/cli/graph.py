"""``dora-zenoh graph FILE|DATAFLOW``: the dataflow as Mermaid, Graphviz dot or a self-contained HTML page."""
from __future__ import annotations

import json
import webbrowser
from pathlib import Path

import click

from dora_zenoh.cli.options import CONTEXT, endpoint_option, load_or_exit


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="FILE|DATAFLOW")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "html", "json"]), default=None,
              help="Output format  [default: html with -o FILE.html or --open, else mermaid].")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@click.option("--open", "open_", is_flag=True, help="Open the HTML page in a browser (writes a file).")
@endpoint_option
def graph(target: str, fmt: str | None, output: Path | None, open_: bool, endpoint: str | None) -> None:
    """Nodes, operators and timers, edges labelled output → input [queue size, policy].

    FILE is a dataflow YAML; anything else names a running dataflow (as its nodes report it).
    """
    from dora_zenoh.introspect import graph as graphs

    path = Path(target)
    if path.suffix in (".yml", ".yaml") or path.is_file():
        g = graphs.from_descriptor(load_or_exit(path))
    else:
        from dora_zenoh.cli.errors import CliError
        from dora_zenoh.cli.topic import observer
        from dora_zenoh.introspect.discovery import wait_snapshot
        from dora_zenoh.introspect.usage import supervisor_rows

        with observer(endpoint, target) as session:
            snap = wait_snapshot(session.client, target)
            rows = supervisor_rows(session.client, [target], endpoint).get(target, {})
        if not any(df == target for df, _ in snap.nodes):
            running = ", ".join(snap.dataflows()) or "none"
            raise CliError(f"'{target}' is neither a YAML file nor a running dataflow (running: {running})")
        # the machine ids `deploy:` names, as the coordinator knows them (else the nodes' hosts)
        placed = {n: r.get("machine") for n, r in rows.items()}
        g = graphs.from_snapshot(snap, target, placed if any(placed.values()) else None)
    if fmt is None:
        fmt = "html" if open_ or (output and output.suffix in (".html", ".htm")) else "mermaid"
    text = json.dumps(g.as_dict(), indent=2) + "\n" if fmt == "json" else graphs.RENDERERS[fmt](g)
    if open_ and output is None:
        output = Path.cwd() / f"{g.name}.graph.html"
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)
    if open_:
        webbrowser.open(output.resolve().as_uri())


COMMANDS = [graph]
