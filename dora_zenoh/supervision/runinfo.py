"""What ``dora-zenoh run`` answers about its dataflow, so ``list`` and ``logs`` see it like the coordinator's.

``run`` supervises its dataflow in its own process, with no coordinator; the CLI finds
it by asking ``{prefix}/@dz/run/{dataflow}/{verb}`` (``list``, ``logs``) on the network.
This answers on the run's own session rather than registering with a coordinator: a
``run`` works and stays visible whether or not a coordinator runs, and a coordinator
that stops or restarts takes nothing of it along.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import zenoh

from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys


def run_key(prefix: str, dataflow: str, verb: str) -> str:
    return f"{prefix}/{keys.INTERNAL}/run/{dataflow}/{verb}"


ANY_RUN = f"**/{keys.INTERNAL}/run/*/"


def serve(run: Any) -> Any:
    """Declare the queryable on ``run.session``; returns it (undeclared with the run's tokens)."""
    started = time.time()

    def answer(query: zenoh.Query) -> None:
        verb = str(query.key_expr).rsplit("/", 1)[-1]
        # Any local session can ask: arguments that are not what the CLI sends get an error
        # reply (they raised in this callback: a traceback on run's stderr per query, no reply).
        args, problem = wire.load_json(query.payload.to_bytes()) if query.payload is not None else ({}, None)
        tail = args.get("tail") if isinstance(args, dict) else None
        if problem is not None or not isinstance(args, dict) or not (
                tail is None or (tail.__class__ is int and tail >= 0)):
            query.reply(str(query.key_expr), json.dumps({"ok": False, "error": "malformed arguments: expected "
                                                         "a JSON object, with 'tail' a count of lines"}))
            return
        if verb == "list":
            states = run.node_states()
            status = "stopping" if run._stopping_at is not None else (
                "degraded" if any(st["status"] == "failed" for st in states) else "running")
            reply: dict[str, Any] = {
                "ok": True, "dataflow": {
                    "id": run.run_id, "name": run.dataflow, "status": status,
                    "path": str(run.desc.path), "started": started, "uptime": time.time() - started,
                    "log_dir": str(run.log_dir), "pid": os.getpid(), "source": "run",
                    "nodes": [{k: v for k, v in s.items() if k != "create_time"} for s in states]}}
        elif verb == "logs":
            node = str(args.get("node", ""))
            if node not in {n.id for n in run.desc.nodes}:
                known = ", ".join(n.id for n in run.desc.nodes)
                reply = {"ok": False, "error": f"dataflow '{run.dataflow}' has no node '{node}' (nodes: {known})"}
            else:
                lines, count = run.logs.read(node, tail)
                reply = {"ok": True, "id": run.run_id, "name": run.dataflow, "lines": lines, "count": count,
                         "active": True, "path": str(run.logs.path(node))}
        else:
            reply = {"ok": False, "error": f"unknown verb '{verb}'"}
        query.reply(str(query.key_expr), json.dumps(reply))

    return run.session.declare_queryable(run_key(run.desc.prefix, run.dataflow, "*"),
                                         zenoh.handlers.Callback(answer, indirect=False))
