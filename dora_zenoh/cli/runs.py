"""``list`` and ``logs`` for dataflows started with ``run`` (they answer on their own session;
see :mod:`dora_zenoh.supervision.runinfo`), merged with the coordinator's."""
from __future__ import annotations

import json
import time
from typing import Any

from dora_zenoh.cli.errors import CliError


def _query(session: Any, key: str, args: dict[str, Any], timeout: float = 2.0) -> list[dict[str, Any]]:
    import zenoh

    out = []
    for reply in session.get(key, payload=json.dumps(args), timeout=timeout, target=zenoh.QueryTarget.ALL):
        if reply.ok is None:
            continue
        try:
            out.append(json.loads(reply.ok.payload.to_bytes()))
        except ValueError:
            continue
    return out


def _observer(endpoint: str | None) -> Any:
    """The discovery side of an Observer (a client of the hub), or None when nothing listens."""
    from dora_zenoh.introspect.discovery import IntrospectError, Observer

    try:
        return Observer(endpoint)
    except IntrospectError:
        return None


def run_rows(endpoint: str | None, target: str | None = None) -> list[dict[str, Any]]:
    """Every dataflow a `run` supervises on this network (or the one named), with CPU and RSS."""
    from dora_zenoh.introspect.discovery import snapshot
    from dora_zenoh.introspect.usage import CpuSampler
    from dora_zenoh.supervision.runinfo import run_key

    obs = _observer(endpoint)
    if obs is None:
        return []
    session = obs.client
    try:
        answers = [a["dataflow"] for a in _query(session, run_key("**", target or "*", "list"), {})
                   if a.get("ok")]
        answers = [a for a in answers if target is None or target in (a["name"], a["id"])]
        if not answers:
            return []
        cpu = CpuSampler()
        pids = [n["pid"] for a in answers for n in a["nodes"] if n.get("pid")]
        cpu.prime(pids)
        time.sleep(0.3)
        sent: dict[tuple[str, str], dict[str, int]] = {}
        if target is not None:
            snap = snapshot(session, answers[0]["name"])
            sent = {k: n.sent for k, n in snap.nodes.items()}
        for a in answers:
            a["cpu"], a["rss"], a["running_nodes"] = 0.0, 0, 0
            for n in a["nodes"]:
                c, rss = cpu.sample(n.get("pid"))
                n["cpu"], n["rss"] = c or 0.0, rss or 0
                n["sent"] = sent.get((a["name"], n["id"]), {})
                a["cpu"] += n["cpu"]
                a["rss"] += n["rss"]
                a["running_nodes"] += 1 if n.get("pid") else 0
            a["restarts"] = sum(n.get("restarts", 0) for n in a["nodes"])
            if target is None:
                a["nodes"] = len(a["nodes"])
            a.setdefault("summary", None)
        return answers
    finally:
        obs.close()


def list_reply(endpoint: str | None, target: str | None) -> dict[str, Any]:
    """The coordinator's ``list`` reply with the `run` dataflows added (either may be absent)."""
    from dora_zenoh.supervision.client import Client, ControlError, NotAuthorizedError

    reply: dict[str, Any] | None = None
    coordinator_error = None
    try:
        with Client(endpoint) as client:
            reply = client.call("list", target=target)
    except NotAuthorizedError as exc:  # another user's coordinator: say so, never "nothing runs"
        raise CliError(str(exc)) from None
    except ControlError as exc:
        coordinator_error = str(exc)
    if target is not None and reply is not None:
        return reply
    runs = run_rows(endpoint, target)
    if target is not None:
        if runs:
            return {"dataflow": runs[0]}
        raise CliError(coordinator_error if coordinator_error and "no coordinator" not in coordinator_error
                       else f"no dataflow '{target}' (neither the coordinator nor a `run` knows it)")
    if reply is None and not runs and coordinator_error and "no coordinator" not in coordinator_error:
        raise CliError(coordinator_error)  # something answered and refused (a daemon's desk, a timeout)
    rows = list((reply or {}).get("dataflows", []))
    names = {r["name"] for r in rows if r.get("status") not in ("finished", "failed", "stopped")}
    rows += [r for r in runs if r["name"] not in names]
    return {"dataflows": rows, "coordinator": reply is not None, "endpoint": endpoint,
            "machine_only": (reply or {}).get("machine_only")}  # (a daemon's answer: daemon.desk)


def run_logs(endpoint: str | None, target: str, node: str, tail: int | None) -> dict[str, Any] | None:
    """A `run` dataflow's node log (as the coordinator's ``logs`` answers), or None if no run has it."""
    from dora_zenoh.supervision.runinfo import run_key

    obs = _observer(endpoint)
    if obs is None:
        return None
    session = obs.client
    try:
        for answer in _query(session, run_key("**", target, "logs"), {"node": node, "tail": tail}):
            if not answer.get("ok"):
                raise CliError(answer.get("error", "the run refused"))
            return answer
    finally:
        obs.close()
    return None


def follow_run_logs(endpoint: str | None, target: str, node: str, seen: int, echo: Any) -> None:
    """``logs -f`` of a `run` dataflow: print new lines until the run is gone (polls its log, 0.5 s)."""
    while True:
        time.sleep(0.5)
        answer = run_logs(endpoint, target, node, None)
        if answer is None:
            return
        for line in answer["lines"][seen:]:
            echo(line)
        seen = max(seen, answer["count"])
