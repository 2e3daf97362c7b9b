"""One script, three nodes (``PROBE_ROLE`` = src, probe or quiet), that exercises every corner
of dora's Python node API and writes one canonical line per probe to ``$PROBE_OUT``.

The same file runs under dora-rs and under dora-zenoh; tests/integration/test_dora_parity.py
compares the lines. A line is ``<node>.<probe>: <what was seen>``, made of types and values,
never of times or ids that differ from run to run.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dora import Node

ROLE = os.environ["PROBE_ROLE"]
OUT = open(os.environ["PROBE_OUT"], "a", encoding="utf-8")  # noqa: SIM115  (kept for the process)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

AWARE = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NAIVE = dt.datetime(2024, 1, 2, 3, 4, 5, 654321)


def line(name: str, what: object) -> None:
    OUT.write(f"{ROLE}.{name}: {what}\n")
    OUT.flush()


def attempt(name: str, fn, ok: str = "ok") -> bool:
    """Run ``fn``; the line says ok (or what fn returned) or the exception's type."""
    try:
        result = fn()
    except Exception as exc:  # what kind of refusal is part of what we compare
        line(name, f"raises {type(exc).__name__}")
        return False
    line(name, ok if result is None else result)
    return True


def canon(value: object) -> str:
    """A run-independent description of a metadata value or an event field."""
    if isinstance(value, dt.datetime):
        tz = "aware" if value.tzinfo is not None else "naive"
        off = value.utcoffset()
        return f"datetime {tz} utcoffset={off} {value.astimezone(dt.timezone.utc).isoformat() if tz == 'aware' else value.isoformat()}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}[{', '.join(canon(v) for v in value)}]"
    if isinstance(value, dict):
        return "dict{" + ", ".join(f"{k}: {canon(v)}" for k, v in sorted(value.items())) + "}"
    return f"{type(value).__name__} {value!r}"


def arrow(value: object) -> str:
    """How a received value looks: its class, type, and whether pyarrow accepts it as an array."""
    is_array = isinstance(value, pa.Array)
    parts = [f"pa.Array={is_array}", f"class={type(value).__name__}"]
    try:
        parts.append(f"type={value.type}")
        parts.append(f"len={len(value)}")
        parts.append(f"nulls={value.null_count}")
    except Exception as exc:
        parts.append(f"introspection raises {type(exc).__name__}")
    try:
        pa.concat_arrays([value, value])
        parts.append("concat=ok")
    except Exception as exc:
        parts.append(f"concat raises {type(exc).__name__}")
    try:
        parts.append(f"pc.count={pc.count(value).as_py()}")
    except Exception as exc:
        parts.append(f"pc.count raises {type(exc).__name__}")
    try:
        values = value.to_pylist()
        if len(values) > 16:
            values = f"{len(values)} values, sum {sum(values)}"
        parts.append(f"values={values!r}")
    except Exception as exc:
        parts.append(f"to_pylist raises {type(exc).__name__}")
    return " ".join(parts)


def node_inputs(node: Node) -> list[str]:
    return list(node.node_config()["inputs"])


def event_shape(event: dict) -> str:
    keys = sorted(event.keys())
    shape = f"type={event['type']} id={event.get('id')!r} keys={keys}"
    if event["type"] == "ERROR":  # dora-rs appends a location and a backtrace: keep the first line
        shape += f" error={str(event.get('error')).splitlines()[0]!r}"
    return shape


# -- the sender --------------------------------------------------------------------------
ARRAYS = {
    "struct": lambda: pa.StructArray.from_arrays([pa.array([1, 2]), pa.array(["a", "b"])], names=["x", "y"]),
    "list": lambda: pa.array([[1, 2], [3]]),
    "fsl": lambda: pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2.0, 3.0, 4.0], pa.float32()), 2),
    "ts": lambda: pa.array([AWARE], pa.timestamp("us", tz="UTC")),
    "sliced": lambda: pa.array(range(10), pa.int32()).slice(3, 4),
    "nulls": lambda: pa.array([1, None, 3]),
    "binary": lambda: pa.array([b"ab", b"c"]),
    "strings": lambda: pa.array(["x", "yz"]),
    "big": lambda: pa.array(np.arange(100_000) % 256, pa.uint8()),
    "bytes": lambda: b"hello",
    "empty": lambda: pa.array([], pa.uint8()),
}
META = {
    "str": "s",
    "int": 7,
    "float": 1.5,
    "bool": True,
    "list_int": [1, 2],
    "list_float": [1.5, 2.5],
    "list_str": ["a", "b"],
    "aware": AWARE,
    "naive": NAIVE,
    "np_int": np.int64(5),
    "np_float": np.float32(2.5),
    "dict": {"a": 1},
    "none": None,
    "own_timestamp": AWARE,  # sent as metadata["timestamp"]: does the receiver see it or its own?
}


def src() -> None:
    node = Node()
    seen: set[str] = set()

    def delivered() -> None:
        """Wait until the probe has the message just sent. dora-rs 1.1 lost some messages of a
        burst on one input in 2 of 5 runs here, so the sender goes one message at a time."""
        while True:
            event = node.next(timeout=30)
            if event is None or event["type"] in ("ERROR", "STOP"):
                raise SystemExit(f"src: the probe did not acknowledge a message: {event!r}")
            if event["type"] == "INPUT":
                if event["id"] == "got":
                    return
                seen.add(event["id"])

    def probed(name: str, fn) -> None:
        if attempt(name, fn):
            delivered()

    for name, make in ARRAYS.items():
        probed(f"send.{name}", lambda make=make, name=name: node.send_output(name, make()))
    for name, value in META.items():
        key = "timestamp" if name == "own_timestamp" else "v"
        probed(f"meta.{name}", lambda name=name, key=key, value=value:
               node.send_output("meta", pa.array([0]), {"probe": name, key: value}))

    def raw() -> None:
        with node.send_output_raw("raw", 4, {"probe": "raw"}) as buf:
            mv = memoryview(buf)
            mv[:] = b"\x01\x02\x03\x04"
            mv.release()

    probed("send_output_raw", raw)
    # Outputs nobody reads (dora-rs refuses the first three; dora-zenoh sends them).
    attempt("send.str", lambda: node.send_output("str", "text"))
    attempt("send.numpy", lambda: node.send_output("numpy", np.arange(3)))
    attempt("send.pylist", lambda: node.send_output("pylist", [1, 2, 3]))
    attempt("send.undeclared", lambda: node.send_output("not_declared", pa.array([1])))
    attempt("send_service_request", lambda: "uuid" if UUID.match(
        node.send_service_request("service", pa.array([1]))) else "not a uuid")
    node.send_output("done", pa.array([1]))
    delivered()
    while not {"ack", "qdone"} <= seen:
        event = node.next(timeout=30)
        if event is None or event["type"] in ("ERROR", "STOP"):
            raise SystemExit(f"src: no ack/qdone: {event!r}")
        if event["type"] == "INPUT":
            seen.add(event["id"])
    line("end", "ok")


# -- the receiver ----------------------------------------------------------------------------
def probe() -> None:
    node = Node()
    line("node_config", canon(node.node_config()))
    desc = node.dataflow_descriptor()
    me = next(n for n in desc["nodes"] if n["id"] == "probe")
    line("descriptor.probe_keys", sorted(me))
    line("descriptor.top_keys", sorted(desc))
    line("descriptor.probe_defaults", canon({k: v for k, v in me.items()
                                             if k not in ("id", "path", "env", "inputs", "outputs")}))
    line("descriptor.top_defaults", canon({k: v for k, v in desc.items() if k != "nodes"}))
    line("dataflow_id", "uuid" if UUID.match(node.dataflow_id()) else f"not a uuid: {node.dataflow_id()!r}")
    attempt("is_restart", lambda: canon(node.is_restart()))
    attempt("restart_count", lambda: canon(node.restart_count()))
    attempt("timestamp", lambda: canon(type(node.timestamp())) + " tz=" + str(node.timestamp().tzinfo))
    for var in ("DORA_NODE_CONFIG", "DORA_RUN_PARENT_PID"):
        line(f"env.{var}", "set" if os.environ.get(var) else "unset")
    attempt("log", lambda: node.log("info", "probe log line"))
    attempt("log_info", lambda: node.log_info("probe log_info line"))
    # Inputs of different sources, and even of one source, may arrive in any order (dora-rs's
    # daemon gives no order across inputs): so the probe ends once it has seen every one.
    waiting = {i for i in node_inputs(node) if i != "tick"}
    metas = 0
    ticks = 0
    for event in node:
        kind = event["type"]
        if kind == "INPUT":
            eid = event["id"]
            meta = event["metadata"]
            if eid == "tick":
                ticks += 1
                if ticks == 1:
                    line("tick.value", arrow(event["value"]))
                    line("tick.metadata", sorted(meta))
                    line("tick.timestamp", canon(type(meta.get("timestamp"))))
            elif eid == "meta":
                metas += 1
                name = meta.get("probe")
                key = "timestamp" if name == "own_timestamp" else "v"
                line(f"meta.{name}", canon(meta.get(key)))
                if name != "own_timestamp":
                    line(f"meta.{name}.keys", sorted(meta))
                if metas == len(META):
                    waiting.discard("meta")
            else:
                waiting.discard(eid)
                line(f"in.{eid}", arrow(event["value"]))
                if eid == "struct":
                    line("in.struct.isinstance", isinstance(event["value"], pa.StructArray))
                    line("in.struct.field", event["value"].field("x").to_pylist())
                if eid in ("struct", "bytes"):
                    line(f"in.{eid}.timestamp", canon(type(meta.get("timestamp"))))
                    line(f"in.{eid}.event", event_shape(event))
                if eid == "raw":
                    line("in.raw.meta", sorted(meta))
            if eid != "tick":
                node.send_output("got", pa.array([1]))  # src sends the next message only now
            if not waiting and ticks:
                node.send_output("ack", pa.array([1]))
                break  # dora-rs keeps a node with a timer running until the dataflow stops
        elif kind == "STOP":
            line("stop", event_shape(event))
        elif kind == "INPUT_CLOSED":
            pass  # how many, and in which order, depends on timing
        else:
            line(f"event.{kind}", event_shape(event))
    line("end", "ok")


# -- the idle node -------------------------------------------------------------------------------
def quiet() -> None:
    node = Node()
    event = node.next(timeout=0.3)
    line("next_timeout", "None" if event is None else event_shape(event))
    attempt("is_empty", lambda: canon(node.is_empty()))
    attempt("try_recv", lambda: canon(node.try_recv()))
    attempt("drain", lambda: canon(node.drain()))

    async def wait() -> object:
        return await node.recv_async(timeout=0.3)

    try:
        got = asyncio.run(asyncio.wait_for(wait(), 10))
        line("recv_async_timeout", "None" if got is None else event_shape(got))
    except Exception as exc:
        line("recv_async_timeout", f"raises {type(exc).__name__}")
    node.send_output("done", pa.array([1]))
    for event in node:
        if event["type"] == "STOP":
            line("stop", event_shape(event))
        elif event["type"] == "INPUT_CLOSED":
            line("closed", event_shape(event))
        else:
            line(f"event.{event['type']}", event_shape(event))
    line("after_stop_next", canon(node.next(timeout=0.3)))
    line("end", "ok")


if __name__ == "__main__":
    {"src": src, "probe": probe, "quiet": quiet}[ROLE]()
    sys.exit(0)
