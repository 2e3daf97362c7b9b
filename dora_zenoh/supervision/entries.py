"""What the coordinator knows about each dataflow it runs: an :class:`Entry`, and per other
machine a :class:`RemotePart` (the nodes that machine's daemon runs, as its reports show them)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dora_zenoh.supervision.results import ENDED, RunResult
from dora_zenoh.supervision.run import DataflowRun

# A report older than this (4 missed) is said in the nodes' detail: `list` answers at once with
# what the machine last said, and says how old that is, instead of waiting for the machine.
STALE_REPORT = 2.0


@dataclass
class RemotePart:
    """The nodes of a dataflow that one machine's daemon runs, as its reports show them."""

    machine: str
    nodes: list[str]
    states: list[dict[str, Any]] = field(default_factory=list)
    status: str = "starting"  # starting | running | stopping | ended | lost | respawning
    log_dir: str | None = None
    # A node of it has a restart policy: if its daemon is lost and a new one comes back, the
    # coordinator starts those nodes again on it.
    waits: bool = False
    heard: float = field(default_factory=time.monotonic)  # monotonic time of its machine's last report
    restart_at: float | None = None  # (respawning) monotonic time its nodes start again
    why: str | None = None  # (lost) what is known of it, when more than "unreachable"
    spawn_asked: bool = False  # `spawn` was sent to its daemon (answered or not: it may run)
    # `stop`: asked of this part (stop_wanted), being sent, answered by its daemon. A machine cut
    # off when it came gets it again at its next report (see MachineWatch._on_daemon_state).
    stop_wanted: bool = False
    stop_sending: bool = False
    stop_delivered: bool = False

    @property
    def stop_pending(self) -> bool:
        """A stop its daemon has not confirmed yet, while the part has not ended."""
        return self.stop_wanted and not self.stop_delivered and not self.done

    @property
    def done(self) -> bool:
        """Ended. A lost part is not done: its machine may come back (a healed partition, a
        restarted daemon); the dataflow stays degraded until then or until `stop`."""
        return self.status == "ended"

    def restarts(self, node: str) -> int:
        """The node's restarts as last reported (0 if never)."""
        return next((int(s.get("restarts") or 0) for s in self.states if s.get("id") == node), 0)

    def node_states(self) -> list[dict[str, Any]]:
        if self.status == "lost":
            detail = self.why or "is unreachable (no report from its machine's daemon: the link is down or the daemon died)"
            if self.stop_pending:
                detail += "; it gets the stop when its machine reports again"
            return [{"id": n, "pid": None, "status": "lost", "restarts": self.restarts(n), "create_time": None,
                     "detail": detail, "machine": self.machine} for n in self.nodes]
        if self.status == "respawning":  # its machine is back; the restart delay runs (as a local restart)
            left = max(0.0, (self.restart_at or time.monotonic()) - time.monotonic())
            return [{"id": n, "pid": None, "status": "restarting", "restarts": self.restarts(n), "create_time": None,
                     "detail": f"its machine '{self.machine}' was lost; restarting in {left:.1f} s",
                     "machine": self.machine} for n in self.nodes]
        known = {s["id"]: s for s in self.states}
        age = time.monotonic() - self.heard
        states = [{**known.get(n, {"id": n, "pid": None, "status": self.status, "restarts": 0,
                                   "create_time": None, "detail": None}), "machine": self.machine,
                   "reported": round(age, 1)}  # seconds since its machine's last report
                  for n in self.nodes]
        if self.status == "running" and age > STALE_REPORT:
            for state in states:  # a partition, a stalled machine: say how old this is
                state["detail"] = (f"as its machine '{self.machine}' last reported {age:.0f} s ago (no report since: "
                                   "unreachable?)")
        return states

    @property
    def silent(self) -> bool:
        """Its machine is lost, or sent no report for STALE_REPORT seconds (a partition)."""
        return self.status == "lost" or (self.status == "running" and time.monotonic() - self.heard > STALE_REPORT)


@dataclass
class Entry:
    """One dataflow the coordinator started, running or ended."""

    run: DataflowRun
    path: str
    grace: float
    started: float = field(default_factory=time.time)
    ended: float | None = None
    status: str = "running"  # running | stopping | succeeded | failed | stopped
    result: RunResult | None = None
    summary: str = ""
    stop_requested: bool = False
    stop_args: dict[str, Any] = field(default_factory=dict)  # the stop's grace and force, for late machines
    thread: threading.Thread | None = None
    usage: dict[str, tuple[float, int]] = field(default_factory=dict)  # node -> (cpu %, rss bytes)
    lines: Any = field(default=None, repr=False)  # its LineCast (start --attach, logs -f)
    relay: Any = field(default=None, repr=False)  # its LineRelay: its other machines' lines
    # Several machines: machine id -> its part (see RemotePart); empty for a one-machine dataflow.
    remote: dict[str, RemotePart] = field(default_factory=dict)
    adopted: bool = False  # started by an earlier coordinator, found running on daemons
    # Fail-fast across machines: the first node (on whichever machine) that failed for good,
    # as "node 'n' on machine 'm' <detail>", once the coordinator stopped every part for it.
    fail_fast_cause: str | None = None
    # The start's shipped files (ship.Offer), kept for a machine that restarts its nodes later.
    shipped: Any = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.run.run_id

    @property
    def name(self) -> str:
        return self.run.dataflow

    @property
    def fail_fast(self) -> bool:
        """``start --fail-fast`` or the YAML's ``fail_fast: true``."""
        return self.run.options.fail_fast or self.run.desc.raw.get("fail_fast") is True

    @property
    def active(self) -> bool:
        return self.status not in ENDED

    def usage_of(self, state: dict[str, Any]) -> tuple[float, int]:
        """(CPU %, RSS bytes) of a node of :meth:`node_states`: measured here for the
        coordinator's own nodes, by its daemon for a node on another machine."""
        if not state["pid"]:
            return 0.0, 0
        if state.get("machine"):
            return float(state.get("cpu") or 0.0), int(state.get("rss") or 0)
        return self.usage.get(state["id"], (0.0, 0))

    def node_states(self) -> list[dict[str, Any]]:
        """Every node, wherever it runs (``machine``: None for the coordinator's own)."""
        states = [{**s, "machine": None} for s in self.run.node_states()]
        for part in self.remote.values():
            states += part.node_states()
        return states
