"""Which machine runs which node: ``deploy: {machine: ID}``, or ``deploy: {labels: ...}`` resolved
against the connected daemons' labels at start; no ``deploy`` means the coordinator's machine."""
from __future__ import annotations

import os
from pathlib import Path

from dora_zenoh.descriptor.model import Descriptor
from dora_zenoh.errors import PlacementError

CHOSEN = "chosen"  # in a node's deploy block: its machine was chosen by its labels (see place)


def remote_nodes(desc: Descriptor) -> dict[str, list[str]]:
    """Node ids per machine id, for the nodes a daemon must run (dynamic nodes never are)."""
    placed: dict[str, list[str]] = {}
    for node in desc.nodes:
        if node.machine is not None and node.kind != "dynamic":
            placed.setdefault(node.machine, []).append(node.id)
    return placed


def unplaced_nodes(desc: Descriptor) -> list[str]:
    """Ids of the nodes without ``deploy`` (a machine or labels), dynamic ones aside."""
    return [n.id for n in desc.nodes if n.machine is None and not n.labels and n.kind != "dynamic"]


def local_nodes(desc: Descriptor) -> set[str]:
    """Ids of the nodes the coordinator's machine runs (dynamic ones included)."""
    return set(unplaced_nodes(desc)) | {n.id for n in desc.nodes if n.kind == "dynamic"}


def labelled_nodes(desc: Descriptor) -> dict[str, dict[str, str]]:
    """The labels each node placed by ``deploy.labels`` (and no machine) asks for."""
    return {n.id: n.labels for n in desc.nodes if n.labels and n.kind != "dynamic"}


def resolve(desc: Descriptor, daemons: dict[str, dict[str, str]]) -> dict[str, str]:
    """A machine for every labelled node: the first machine id, in sorted order, whose daemon has
    all of its labels (more labels are fine). ``daemons``: each connected daemon's labels.
    Raises PlacementError naming every node no daemon suits."""
    placement: dict[str, str] = {}
    unmet = []
    for node_id, wanted in labelled_nodes(desc).items():
        fits = [m for m in sorted(daemons) if all(daemons[m].get(k) == v for k, v in wanted.items())]
        if fits:
            placement[node_id] = fits[0]
        else:
            unmet.append(f"node '{node_id}' asks for {describe(wanted)}")
    if unmet:
        known = "; ".join(f"'{m}' {describe(daemons[m]) or '(no labels)'}" for m in sorted(daemons)) or "none"
        raise PlacementError(f"no connected daemon has the labels: {', '.join(unmet)} (daemons: {known}); start "
                             "one with `dora-zenoh daemon --labels k=v ...` on a machine that suits, or change "
                             "the node's `deploy`")
    return placement


def place(desc: Descriptor, placement: dict[str, str]) -> None:
    """Put each node of ``placement`` on its machine (``deploy.machine``), as every process of the
    dataflow must see it: the coordinator and each daemon apply the coordinator's choice."""
    for node_id, machine in placement.items():
        node = desc.node(node_id)
        node.deploy = {**(node.deploy or {}), "machine": machine, CHOSEN: True}


def placement_of(desc: Descriptor) -> dict[str, str]:
    """The machines chosen for labelled nodes (after :func:`place`), to hand to the daemons."""
    return {n.id: n.machine for n in desc.nodes if n.machine is not None and (n.deploy or {}).get(CHOSEN)}


def describe(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def parse_labels(text: str) -> dict[str, str]:
    """``gpu=true,arch=arm64`` (``daemon --labels``) as a mapping; ValueError names a bad item."""
    from dora_zenoh.descriptor.rules.deploy import LABEL

    labels: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not LABEL.match(key.strip()) or not LABEL.match(value.strip()):
            raise ValueError(f"{item!r} is not a label: use key=value (letters, digits, '_', '.', '-', '/')")
        labels[key.strip()] = value.strip()
    return labels


def machine_hint(machine: str, connected: list[str]) -> str:
    """" (did you mean 'offboard'?)" when a connected daemon's id is close to ``machine``: a
    misspelt ``deploy: {machine: ...}`` otherwise reads like a machine that is down."""
    from dora_zenoh.descriptor.context import did_you_mean

    close = did_you_mean(machine, sorted(connected))
    return f" ({close})" if close else ""


def deploy_line(path: str | os.PathLike[str], node_id: str) -> int | None:
    """The line of ``node_id``'s ``deploy`` machine in the YAML at ``path`` (None if not found)."""
    import yaml

    from dora_zenoh.descriptor.yaml_lines import load_yaml_with_lines

    try:
        loaded = load_yaml_with_lines(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    nodes = loaded.data.get("nodes") if isinstance(loaded.data, dict) else None
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        if isinstance(node, dict) and node.get("id") == node_id:
            for key in ("deploy", "_unstable_deploy"):
                if key in node:
                    return loaded.line_of(("nodes", index, key, "machine"))
    return None
