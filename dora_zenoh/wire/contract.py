"""The configuration a node process receives, built from the descriptor.

It is plain JSON (in ``$DORA_ZENOH_NODE_CONFIG``, or served to dynamic nodes over
Zenoh) so that a node needs neither pydantic nor the YAML file to start: start-up
time is part of the product.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dora_zenoh.wire import keys

if TYPE_CHECKING:
    from dora_zenoh.descriptor.load import Descriptor, OperatorSpec, ResolvedInput, ResolvedNode


def stdout_outputs(desc: Descriptor) -> set[tuple[str, str]]:
    """(node, output) pairs whose stdout lines the runner publishes (``send_stdout_as``).

    An operator runtime publishes its operators' lines itself, as ordinary outputs.
    """
    return {(n.id, n.send_stdout_as) for n in desc.nodes if n.send_stdout_as and n.kind != "runtime"}


def input_config(desc: Descriptor, dataflow: str, inp: ResolvedInput) -> dict[str, Any]:
    """One input as a node sees it: the key to subscribe to and its queue."""
    spec: dict[str, Any] = {"queue_size": inp.queue_size, "queue_policy": inp.queue_policy}
    if inp.timer_ns:
        spec["timer_ns"] = inp.timer_ns
        return spec
    key = keys.data_key(desc.prefix, dataflow, inp.source)
    # The sender publishes an output on its block key too when its readers (those started
    # with the dataflow) use both policies; a block reader of such an output reads there.
    if inp.queue_policy == "block" and {"block", "drop_oldest"} <= output_policies(desc, inp.source_node).get(
            inp.source_output, set()):
        key = keys.block_key(desc.prefix, dataflow, inp.source)  # see keys.block_key
    spec.update(key=key, source_node=inp.source_node,
                source_output=inp.source_output,
                stdout=(inp.source_node, inp.source_output) in stdout_outputs(desc))
    if inp.source_node in restartable_nodes(desc):
        spec["restartable"] = True
    return spec


def restartable_nodes(desc: Descriptor) -> set[str]:
    """Nodes whose process may end and come back: a ``restart_policy`` other than ``never``,
    or ``path: dynamic`` (started by hand; may leave and rejoin).

    Their downstream inputs ignore the loss of their liveliness token and their
    end-of-stream notices, and close only on the runner's final ``exited/<node>``
    token (or when the dataflow stops), so a restart is invisible downstream.
    """
    return {n.id for n in desc.nodes if n.restart_policy != "never" or n.kind == "dynamic"}


def _readers(desc: Descriptor, node_id: str) -> list[tuple[str, ResolvedInput]]:
    """(reader node, its input) for every input of a node started with the dataflow that
    reads an output of ``node_id``."""
    found = []
    for other in desc.nodes:
        if other.id == node_id or other.kind == "dynamic":
            continue
        all_inputs = list(other.inputs.values()) + [i for op in other.operators for i in op.inputs.values()]
        found.extend((other.id, i) for i in all_inputs if i.source_node == node_id and i.source_output)
    return found


def output_policies(desc: Descriptor, node_id: str) -> dict[str, set[str]]:
    """For each output of ``node_id``: the queue policies its readers use."""
    policies: dict[str, set[str]] = {}
    for _, i in _readers(desc, node_id):
        policies.setdefault(i.source_output, set()).add(i.queue_policy)
    return policies


def block_readers_by_output(desc: Descriptor, node_id: str) -> dict[str, list[str]]:
    """For each output of ``node_id``: the readers with ``queue_policy: block``, the only ones
    that may hold the sender back (and that it waits for when it exits)."""
    readers: dict[str, list[str]] = {}
    for other, i in _readers(desc, node_id):
        if i.queue_policy == "block" and other not in readers.setdefault(i.source_output, []):
            readers[i.source_output].append(other)
    return {o: r for o, r in readers.items() if r}


def readers_by_output(desc: Descriptor, node_id: str) -> dict[str, list[str]]:
    """For each output of ``node_id``: the nodes started with the dataflow that read it
    (what its start barrier waits for; dynamic nodes never hold it up)."""
    readers: dict[str, list[str]] = {}
    for other in desc.nodes:
        if other.id == node_id or other.kind == "dynamic":
            continue
        all_inputs = list(other.inputs.values()) + [i for op in other.operators for i in op.inputs.values()]
        for i in all_inputs:
            if i.source_node == node_id and i.source_output:
                out_readers = readers.setdefault(i.source_output, [])
                if other.id not in out_readers:
                    out_readers.append(other.id)
    return readers


def node_config(desc: Descriptor, dataflow: str, node: ResolvedNode, endpoint: str,
                supervised: bool = True) -> dict[str, Any]:
    """Everything node ``node`` needs to join dataflow ``dataflow``."""
    runtime = node.kind == "runtime"
    outputs = {o: keys.data_key(desc.prefix, dataflow, f"{node.id}/{o}")
               for o in node.outputs if runtime or o != node.send_stdout_as}
    cfg: dict[str, Any] = {
        "dataflow": dataflow,
        "node": node.id,
        "prefix": desc.prefix,
        "endpoint": endpoint,
        "descriptor": str(desc.path),
        "supervised": supervised,
        "inputs": {i: input_config(desc, dataflow, inp) for i, inp in node.inputs.items()},
        "outputs": outputs,
        "readers": readers_by_output(desc, node.id),
        "block_readers": block_readers_by_output(desc, node.id),
        # Outputs read with both policies: also published on keys.block_key for the block readers.
        "split_outputs": sorted(o for o, p in output_policies(desc, node.id).items() if len(p) > 1),
    }
    if runtime:
        cfg["operators"] = [operator_config(node, op) for op in node.operators]
    return cfg


def operator_config(node: ResolvedNode, op: OperatorSpec) -> dict[str, Any]:
    """One operator of a runtime node: its file and ids, without the node-level "opid/" prefix.

    A node-level ``send_stdout_as: opid/out`` counts as that operator's.
    """
    stdout_as = op.send_stdout_as
    if stdout_as is None and node.send_stdout_as and node.send_stdout_as.startswith(f"{op.id}/"):
        stdout_as = node.send_stdout_as[len(op.id) + 1:]
    return {"id": op.id, "python": str(op.python), "inputs": list(op.inputs), "outputs": list(op.outputs),
            "send_stdout_as": stdout_as}
