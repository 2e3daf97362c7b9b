"""ROS-like nodes: a script that names its own inputs and outputs, with no YAML.

``Node("teleop", outputs=["cmd_vel"])`` publishes on ``{prefix}/{dataflow}/teleop/cmd_vel``
and ``Node("viewer", inputs={"image": "camera/image"}, dataflow="robot")`` subscribes
to ``{prefix}/robot/camera/image``: the same keys a YAML dataflow uses, so such
scripts talk to each other and to the nodes of a running dataflow alike.

The configuration a runner would hand a node is built here, locally. Inputs of such
a node never close because a source leaves (like a ROS topic): a publisher may come
and go. They close, with STOP, when the dataflow they joined is stopped.
"""
from __future__ import annotations

from typing import Any

import zenoh

from dora_zenoh.descriptor.limits import MAX_QUEUE_SIZE
from dora_zenoh.descriptor.timers import PREFIX as TIMER_PREFIX
from dora_zenoh.descriptor.timers import TimerError, parse_timer
from dora_zenoh.errors import NodeConfigError
from dora_zenoh.wire import keys, zconfig
from dora_zenoh.wire.contract import DEFAULT_QUEUE_SIZE, QUEUE_POLICIES, InputConfig, NodeConfig

DEFAULT_DATAFLOW = "default"


def adhoc_config(node_id: str, inputs: dict[str, Any] | None, outputs: list[str] | None,
                 dataflow: str | None, prefix: str, endpoint: str) -> NodeConfig:
    """The node configuration of a YAML-less node.

    ``inputs`` maps an input id to ``"node/output"`` (or ``"node/op/output"``, or a
    ``dora/timer/...``), or to ``{"source": ..., "queue_size": N, "queue_policy": ...}``.
    Raises :class:`NodeConfigError` naming the node, the input and the fix.
    """
    dataflow = dataflow or DEFAULT_DATAFLOW
    return NodeConfig(
        dataflow=dataflow, node=node_id, prefix=prefix, endpoint=endpoint, descriptor=None, supervised=False,
        inputs={in_id: _input(node_id, in_id, spec, prefix, dataflow) for in_id, spec in (inputs or {}).items()},
        outputs={o: keys.data_key(prefix, dataflow, f"{node_id}/{o}") for o in (outputs or [])},
        readers={})


def _input(node_id: str, in_id: str, spec: Any, prefix: str, dataflow: str) -> InputConfig:
    where = f"input '{in_id}' of node '{node_id}'"
    if isinstance(spec, str):
        spec = {"source": spec}
    if not isinstance(spec, dict):
        raise NodeConfigError(f"{where}: {spec!r} is neither a source nor a mapping, e.g. "
                              "inputs={\"image\": \"camera/image\"} or "
                              "inputs={\"image\": {\"source\": \"camera/image\", \"queue_size\": 2}}")
    source = str(spec.get("source", ""))
    queue_size = spec.get("queue_size", DEFAULT_QUEUE_SIZE)
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or not 1 <= queue_size <= MAX_QUEUE_SIZE:
        raise NodeConfigError(f"{where}: queue_size must be a whole number from 1 to {MAX_QUEUE_SIZE}, "
                              f"not {queue_size!r}")
    policy = spec.get("queue_policy", "drop_oldest")
    if policy not in QUEUE_POLICIES:
        raise NodeConfigError(f"{where}: queue_policy must be one of {', '.join(QUEUE_POLICIES)}, not {policy!r}")
    if source.startswith(TIMER_PREFIX):
        try:
            return InputConfig(queue_size, policy, timer_ns=parse_timer(source))
        except TimerError as exc:
            raise NodeConfigError(f"{where}: {exc.message}; {exc.hint}") from None
    node, _, output = source.partition("/")
    if not node or not output:
        raise NodeConfigError(f"{where}: source '{source}' is not node/output, e.g. "
                              "inputs={\"image\": \"camera/image\"}")
    return InputConfig(queue_size, policy, key=keys.data_key(prefix, dataflow, source), source_node=node,
                       source_output=output, stdout=False, restartable=True)


def open_session(hub: str) -> zenoh.Session:
    """A session on the hub; if nothing listens there (no coordinator, no run), this
    script becomes the hub itself so that other such scripts can find it."""
    if not zconfig.tcp_port_in_use(hub):
        try:
            return zenoh.open(zconfig.peer_config([], [hub, zconfig.node_listen_endpoint(hub)]))
        except zenoh.ZError:
            pass  # another script took the endpoint a moment ago: connect to it instead
    session = zconfig.open_peer([hub], [zconfig.node_listen_endpoint(hub)])
    zconfig.wait_for_peers(session, 2.0)
    return session
