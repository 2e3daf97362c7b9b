"""``cpu_affinity``: CPUs this machine lets a node run on (the list's syntax is checked by the schema)."""
from __future__ import annotations

import sys

import dora_zenoh.descriptor.host as host
from dora_zenoh.descriptor.context import Context, NodeInfo
from dora_zenoh.descriptor.cpus import format_cpu_list


def cpu_affinity(ctx: Context, node: NodeInfo, kind: str) -> list[int] | None:
    """The node's CPUs, if it asks for some this machine lets us use (else None, with a problem)."""
    cpus = node.schema.cpu_affinity if node.schema else None
    if cpus is None:
        return None
    at = node.at + ("cpu_affinity",)
    if kind == "dynamic":
        ctx.add("cpu_affinity has no effect on a dynamic node", at, node.id,
                hint=f"you start it, so pin it yourself: taskset -c {format_cpu_list(cpus)} <command>")
        return None
    if not host.supported():
        ctx.add(f"cpu_affinity is not supported on {sys.platform}", at, node.id,
                hint="it needs Linux; remove it on this machine")
        return None
    missing = host.unusable(cpus)
    if missing:
        which = "CPU" if len(missing) == 1 else "CPUs"
        ctx.add(f"cpu_affinity names {which} {format_cpu_list(missing)}, which a node cannot run on here",
                at, node.id,
                hint=f"CPUs {format_cpu_list(host.usable_cpus())} are usable (online, and in this process's "
                     "cgroup); pick from those")
        return None
    return cpus
