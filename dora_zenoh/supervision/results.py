"""How nodes and dataflows end: the statuses, a node's result, a run's result and its summary.

Plain data with no process or Zenoh in it, so the coordinator, the CLI and tests share
one vocabulary (``ENDED``, ``OK``) and one summary text.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

# A node's status: "succeeded" | "failed" | "stopped" | "killed".
# A dataflow's (coordinator entry) status: "running" | "stopping" | one of ENDED.
ENDED = ("succeeded", "failed", "stopped")  # a dataflow in one of these is over
OK = ("succeeded", "stopped")  # endings that are not failures (exit code 0)


@dataclass
class NodeResult:
    """How one node ended."""

    id: str
    returncode: int | None
    status: str  # "succeeded" | "failed" | "stopped" | "killed"
    detail: str
    ended_at: float  # wall-clock seconds: when the node's end began (see DataflowRun._ended_at)
    stderr_tail: list[str] = field(default_factory=list)
    restarts: int = 0

    @property
    def ok(self) -> bool:
        return self.status in OK


@dataclass
class RunResult:
    """The outcome of a run: every node's result and where the logs are."""

    dataflow: str
    run_id: str
    log_dir: Path
    nodes: list[NodeResult]

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.nodes)

    @property
    def first_failure(self) -> NodeResult | None:
        failed = sorted((n for n in self.nodes if not n.ok), key=lambda n: n.ended_at)
        return failed[0] if failed else None

    def summary(self, elsewhere: dict[str, int] | None = None) -> str:
        """``elsewhere``: nodes that succeeded on other machines (the coordinator's view), by machine."""
        first = self.first_failure
        if first is None:
            total = len(self.nodes) + sum((elsewhere or {}).values())
            where = "".join(f", {n} on machine '{m}'" for m, n in sorted((elsewhere or {}).items()))
            return f"dataflow '{self.dataflow}' finished: {total} node(s) succeeded{where} (logs: {self.log_dir})"
        others = [n.id for n in self.nodes if not n.ok and n is not first]
        lines = [f"dataflow '{self.dataflow}' failed: node '{first.id}' {first.detail}"]
        if others:
            lines[0] += f" (then also: {', '.join(others)})"
        if first.stderr_tail:
            lines.append(f"last lines of '{first.id}' stderr:")
            lines.extend(f"    {line}" for line in first.stderr_tail)
        lines.append(f"logs: {self.log_dir}")
        return "\n".join(lines)


def exit_outcome(returncode: int | None, stop_action: str | None, grace: float,
                 supervision_lost: str | None = None, close_failed: str | None = None) -> tuple[str, str]:
    """(status, detail) of a node process that ended with ``returncode``.

    ``stop_action`` is what the run did to it: None, "terminated" (SIGTERM as its STOP: it
    does not use the node API), "killed" (it outlived the ``grace`` period) or "forced"
    (killed on request). ``supervision_lost`` / ``close_failed``: what the node said on
    stderr (``wire.stderr_tags``) when it stopped because it could not reach its runner,
    or its Zenoh session did not close: the run did not go as asked, whatever its code.
    """
    status, detail = _process_outcome(returncode, stop_action, grace)
    if status in OK and supervision_lost:
        return "failed", f"was stopped because it lost its supervisor ({supervision_lost})"
    if status in OK and close_failed:
        return "failed", f"did not close cleanly ({close_failed})"
    return status, detail


def _process_outcome(returncode: int | None, stop_action: str | None, grace: float) -> tuple[str, str]:
    if stop_action == "killed":
        return "killed", f"did not stop within the {grace:g} s grace period and was killed"
    if stop_action == "interrupted":
        return "killed", "was still running at the second Ctrl-C and was killed"
    if stop_action == "forced":
        return "killed", "was killed on request (--force)"
    if returncode == 0:
        return "succeeded", "exited with code 0"
    if stop_action == "terminated" and returncode is not None and returncode < 0:
        return "stopped", "was stopped (it does not use the node API, so it got SIGTERM)"
    if returncode is not None and returncode < 0:
        return "failed", f"was killed by signal {signal_name(-returncode)}"
    return "failed", f"exited with code {returncode}"


def signal_name(num: int) -> str:
    """``SIGKILL`` for 9; the number itself for an unknown signal."""
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)
