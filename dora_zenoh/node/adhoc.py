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

from dora_zenoh.errors import NodeConfigError
from dora_zenoh.wire import keys, zconfig

DEFAULT_DATAFLOW = "default"
_TIMER_UNITS = {"millis": 1_000_000, "secs": 1_000_000_000}


def _timer_ns(source: str) -> int:
    parts = source.split("/")
    try:
        if len(parts) == 4 and parts[2] in _TIMER_UNITS:
            return int(float(parts[3]) * _TIMER_UNITS[parts[2]])
        if len(parts) == 4 and parts[2] == "hz":
            return int(1e9 / float(parts[3]))
    except (ValueError, ZeroDivisionError):
        pass
    raise NodeConfigError(f"'{source}' is not a timer: use dora/timer/millis/N, dora/timer/secs/N or "
                          "dora/timer/hz/N")


def adhoc_config(node_id: str, inputs: dict[str, Any] | None, outputs: list[str] | None,
                 dataflow: str | None, prefix: str, endpoint: str) -> dict[str, Any]:
    """The node configuration of a YAML-less node (the same shape ``nodeconfig`` builds).

    ``inputs`` maps an input id to ``"node/output"`` (or ``"node/op/output"``, or a
    ``dora/timer/...``), or to ``{"source": ..., "queue_size": N, "queue_policy": ...}``.
    """
    dataflow = dataflow or DEFAULT_DATAFLOW
    cfg_inputs: dict[str, Any] = {}
    for in_id, spec in (inputs or {}).items():
        if isinstance(spec, str):
            spec = {"source": spec}
        source = str(spec.get("source", ""))
        entry: dict[str, Any] = {"queue_size": int(spec.get("queue_size", 10)),
                                 "queue_policy": spec.get("queue_policy", "drop_oldest")}
        if source.startswith("dora/timer/"):
            entry["timer_ns"] = _timer_ns(source)
        else:
            node, _, output = source.partition("/")
            if not node or not output:
                raise NodeConfigError(f"input '{in_id}' of node '{node_id}': source '{source}' is not "
                                      "node/output, e.g. inputs={\"image\": \"camera/image\"}")
            entry.update(key=keys.data_key(prefix, dataflow, source), source_node=node,
                         source_output=output, stdout=False, restartable=True)
        cfg_inputs[in_id] = entry
    return {
        "dataflow": dataflow,
        "node": node_id,
        "prefix": prefix,
        "endpoint": endpoint,
        "descriptor": None,
        "supervised": False,
        "inputs": cfg_inputs,
        "outputs": {o: keys.data_key(prefix, dataflow, f"{node_id}/{o}") for o in (outputs or [])},
        "readers": {},
    }


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
