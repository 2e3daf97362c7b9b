"""How a run reports its end: node statuses from exit codes, and the summary `run` prints."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dora_zenoh.supervision.results import ENDED, OK, NodeResult, RunResult, exit_outcome

LOGS = Path("/tmp/out/20261125-004512-3fa2")


def node(id: str, status: str, detail: str = "", ended_at: float = 0.0, tail: list[str] | None = None) -> NodeResult:
    code = {"succeeded": 0, "failed": 1}.get(status)
    return NodeResult(id, code, status, detail, ended_at, tail or [])


def test_all_succeeded():
    result = RunResult("flow", "run-1", LOGS, [node("a", "succeeded"), node("b", "stopped")])
    assert result.ok and result.first_failure is None
    assert result.summary() == f"dataflow 'flow' finished: 2 node(s) succeeded (logs: {LOGS})"


def test_first_failure_in_time_is_the_cause_with_its_stderr_tail():
    result = RunResult("flow", "run-1", LOGS, [
        node("sink", "failed", "exited with code 1", ended_at=20.0),
        node("source", "failed", "exited with code 3", ended_at=10.0, tail=["Traceback ...", "ValueError: boom"]),
        node("ok", "succeeded"),
        node("slow", "killed", "did not stop within the 10 s grace period and was killed", ended_at=30.0),
    ])
    assert not result.ok
    assert result.first_failure.id == "source"
    assert result.summary() == "\n".join([
        "dataflow 'flow' failed: node 'source' exited with code 3 (then also: sink, slow)",
        "last lines of 'source' stderr:",
        "    Traceback ...",
        "    ValueError: boom",
        f"logs: {LOGS}",
    ])


def test_one_failure_without_stderr():
    result = RunResult("flow", "run-1", LOGS, [node("a", "failed", "was killed by signal SIGKILL")])
    assert result.summary() == f"dataflow 'flow' failed: node 'a' was killed by signal SIGKILL\nlogs: {LOGS}"


def test_statuses():
    assert ENDED == ("succeeded", "failed", "stopped")
    assert OK == ("succeeded", "stopped")
    assert [node("n", s).ok for s in ("succeeded", "stopped", "failed", "killed")] == [True, True, False, False]


@pytest.mark.parametrize(("code", "action", "outcome"), [
    (0, None, ("succeeded", "exited with code 0")),
    (3, None, ("failed", "exited with code 3")),
    (-signal.SIGSEGV, None, ("failed", "was killed by signal SIGSEGV")),
    (-99, None, ("failed", "was killed by signal 99")),
    (-signal.SIGTERM, "terminated", ("stopped", "was stopped (it does not use the node API, so it got SIGTERM)")),
    (0, "terminated", ("succeeded", "exited with code 0")),
    (2, "terminated", ("failed", "exited with code 2")),
    (-signal.SIGKILL, "killed", ("killed", "did not stop within the 2.5 s grace period and was killed")),
    (0, "killed", ("killed", "did not stop within the 2.5 s grace period and was killed")),
    (-signal.SIGKILL, "forced", ("killed", "was killed on request (--force)")),
])
def test_exit_outcome(code, action, outcome):
    assert exit_outcome(code, action, 2.5) == outcome
