"""Per-node figures for ``node list``, ``node info`` and ``top``: CPU, memory, messages, drops, queues.

Counters come from the nodes' stats queryables (see :mod:`discovery`); rates are the
difference of two snapshots. CPU and RSS are read with psutil for node processes on
this machine; a node placed on another machine (``deploy``) shows what its daemon measured
there and reported to the coordinator, and its ``machine`` is that machine's id. Restarts and the supervisor's status come
from the coordinator when it runs the dataflow (one ``list`` query on its control socket).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import psutil

from dora_zenoh.introspect.discovery import NodeInfo, Snapshot
from dora_zenoh.introspect.graph import _timer_label

_HOST = os.uname().nodename


@dataclass
class NodeRow:
    dataflow: str
    id: str
    status: str
    pid: int | None
    machine: str | None = None
    cpu: float | None = None             # percent of one CPU
    rss: int | None = None               # bytes
    sent: int = 0
    received: int = 0
    dropped: int = 0
    queued: int = 0
    out_rate: float | None = None        # messages/s
    in_rate: float | None = None
    restarts: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    measured_elsewhere: bool = False  # CPU and RSS: on another machine, which did not say them here

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class CpuSampler:
    """psutil processes kept between refreshes, so ``cpu_percent`` measures the interval between them."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def prime(self, pids: list[int]) -> None:
        for pid in pids:
            self.sample(pid)

    def sample(self, pid: int | None) -> tuple[float | None, int | None]:
        if not pid:
            return None, None
        try:
            proc = self._procs.get(pid)
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
                proc.cpu_percent(None)
                return None, proc.memory_info().rss
            return proc.cpu_percent(None), proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self._procs.pop(pid, None)
            return None, None


def supervisor_rows(session: Any, dataflows: list[str], endpoint: str | None = None,
                    timeout: float = 1.0) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`coordinator_rows` for each dataflow, through one connection to the coordinator's
    control socket (owner-only: another user's tools see the `run` dataflows' rows only)."""
    from dora_zenoh.supervision.client import Client

    try:
        control: Any = Client(endpoint, connect_timeout=timeout)
    except Exception:  # noqa: BLE001 - no coordinator, or not ours: the runs' answers suffice
        control = None
    try:
        return {df: coordinator_rows(session, df, timeout, control) for df in dataflows}
    finally:
        if control is not None:
            control.close()


STALE_REPORT = 2.0  # seconds without a report from a node's machine: shown "unknown", not waited for


class Unreachable:
    """Which (dataflow, node) the coordinator hears nothing from (its machine is lost, or sent no
    report for STALE_REPORT seconds), asked again at each call through one control connection:
    ``node list``/``node info``/``top`` do not wait for nodes that cannot answer (a partition),
    and show them as the coordinator knows them. Empty without a coordinator (a `run`)."""

    def __init__(self, endpoint: str | None, dataflow: str | None, timeout: float = 1.0) -> None:
        from dora_zenoh.supervision.client import Client

        self.dataflow, self.timeout = dataflow, timeout
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        try:
            self.control: Any = Client(endpoint, connect_timeout=timeout)
        except Exception:  # noqa: BLE001 - no coordinator, or not ours
            self.control = None

    def __call__(self) -> frozenset[tuple[str, str]]:
        if self.control is None:
            return frozenset()
        try:
            names = [self.dataflow] if self.dataflow else [
                r["name"] for r in self.control.call("list", timeout=self.timeout)["dataflows"]
                if r.get("status") in ("running", "degraded")]
            found: dict[tuple[str, str], dict[str, Any]] = {}
            for name in names:
                row = self.control.call("list", timeout=self.timeout, target=name, counts=False)["dataflow"]
                found |= {(name, n["id"]): n for n in row.get("nodes", []) if _unreachable(n)}
        except Exception:  # noqa: BLE001 - not the coordinator's dataflow, or it did not answer in time
            return frozenset(self.states)
        self.states = found
        return frozenset(found)

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None

    def __enter__(self) -> Unreachable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unreachable(state: dict[str, Any]) -> bool:
    return state.get("status") == "lost" or float(state.get("reported") or 0.0) > STALE_REPORT


def coordinator_rows(session: Any, dataflow: str, timeout: float = 1.0,
                     control: Any = None) -> dict[str, dict[str, Any]]:
    """The supervisor's view of a dataflow's nodes (status, restarts): the coordinator's (asked
    on its control socket through ``control``, a supervision Client), else the `run`'s that
    supervises it (asked on the hub ``session``, see supervision.runinfo); {} if neither answers."""
    from dora_zenoh.supervision.runinfo import run_key

    if control is not None:
        try:
            row = control.call("list", timeout=timeout, target=dataflow, counts=False)["dataflow"]
            if row.get("status") not in ("finished", "failed", "stopped"):
                return {n["id"]: n for n in row.get("nodes", [])}
        except Exception:  # noqa: BLE001 - not the coordinator's dataflow: a `run`'s, maybe
            pass
    try:
        replies = list(session.get(run_key("**", dataflow, "list"), timeout=timeout))
        for reply in replies:
            if reply.ok is None:
                continue
            answer = json.loads(reply.ok.payload.to_bytes())
            if answer.get("ok") and answer.get("dataflow"):
                return {n["id"]: n for n in answer["dataflow"].get("nodes", [])}
    except Exception:  # noqa: BLE001 - no coordinator, or an older one: the nodes' own facts suffice
        return {}
    return {}


def _totals(node: NodeInfo) -> tuple[int, int, int, int]:
    data = [i for i in node.inputs.values() if i.timer_ns is None]
    return (sum(node.sent.values()), sum(i.received for i in data), sum(i.dropped for i in data),
            sum(i.queued for i in data))


def rows(snap: Snapshot, cpu: CpuSampler, prev: Snapshot | None = None, dt: float = 0.0,
         supervisor: dict[str, dict[str, dict[str, Any]]] | None = None) -> list[NodeRow]:
    """One row per node of the snapshot; rates when ``prev`` (taken ``dt`` seconds before) is given."""
    readers: dict[tuple[str, str], list[str]] = {}
    for (df, _), n in snap.nodes.items():
        for inp in n.inputs.values():
            if inp.source:
                readers.setdefault((df, inp.source), []).append(f"{n.id}/{inp.id}")
    out = []
    for (df, node_id), n in sorted(snap.nodes.items()):
        sent, received, dropped, queued = _totals(n)
        status = "running" if n.alive else ("exited" if n.exited else "starting")
        sup = (supervisor or {}).get(df, {}).get(node_id)
        restarts = None
        if sup:
            status = sup.get("status", status)
            restarts = sup.get("restarts")
            if status == "running" and _unreachable(sup):  # what its machine last said is getting old
                status = "unknown"
        pid = n.pid or (sup or {}).get("pid")
        machine = n.machine
        on_this_host = n.host in (None, _HOST)
        if sup and sup.get("machine"):  # placed by `deploy`: its daemon measured it, on its machine
            machine = sup["machine"]
            c, rss = (sup.get("cpu"), sup.get("rss")) if sup.get("pid") else (None, None)
        elif on_this_host:  # psutil only sees this machine's processes
            c, rss = cpu.sample(pid) if n.alive or sup else (None, None)
        else:
            c, rss = None, None
        row = NodeRow(df, node_id, status, pid, machine, c, rss, sent, received, dropped, queued,
                      restarts=restarts, measured_elsewhere=c is None and not on_this_host)
        row.inputs = {k: {"source": i.source or (_timer_label(i.timer_ns) if i.timer_ns else None),
                          "queue_size": i.queue_size, "policy": i.policy, "received": i.received,
                          "dropped": i.dropped, "queued": i.queued} for k, i in n.inputs.items()}
        row.outputs = {o: {"sent": c_, "readers": readers.get((df, f"{node_id}/{o}"), [])}
                       for o, c_ in n.sent.items()}
        old = prev.nodes.get((df, node_id)) if prev else None
        if old is not None and dt > 0:
            osent, orecv, _, _ = _totals(old)
            row.out_rate = max(0.0, (sent - osent) / dt)
            row.in_rate = max(0.0, (received - orecv) / dt)
        out.append(row)
    # nodes the coordinator knows on a machine it hears nothing from, which did not answer
    for df, nodes in sorted((supervisor or {}).items()):
        for node_id, sup in sorted(nodes.items()):
            if (df, node_id) not in snap.nodes and _unreachable(sup):
                status = "unknown" if sup.get("status") == "running" else sup.get("status", "unknown")
                out.append(NodeRow(df, node_id, status, None, sup.get("machine"), None, None, 0, 0, 0, 0,
                                   restarts=sup.get("restarts")))
    return out
