"""The probe's operator (runs in dora-rs's and in dora-zenoh's operator runtime): one canonical
line per probe, to ``$PROBE_OUT``, like probe.py."""
import os

import pyarrow as pa
from dora import DoraStatus

OUT = open(os.environ["PROBE_OUT"], "a", encoding="utf-8")  # noqa: SIM115


def line(name, what):
    OUT.write(f"op.{name}: {what}\n")
    OUT.flush()


class Operator:
    def __init__(self):
        self.seen = set()

    def on_event(self, dora_event, send_output):
        kind = dora_event["type"]
        if kind == "INPUT" and dora_event["id"] not in self.seen:
            eid = dora_event["id"]
            self.seen.add(eid)
            value = dora_event["value"]
            meta = dora_event["metadata"]
            line(f"{eid}.value", f"pa.Array={isinstance(value, pa.Array)} class={type(value).__name__} "
                                 f"type={value.type} values={value.to_pylist()}")
            line(f"{eid}.metadata", f"{sorted(meta)} timestamp={type(meta.get('timestamp')).__name__}")
            try:
                send_output("not_declared", pa.array([1]))
                line(f"{eid}.undeclared", "ok")
            except Exception as exc:
                line(f"{eid}.undeclared", f"raises {type(exc).__name__}")
            send_output("seen", pa.array([eid]), meta)  # metadata (with its datetime) sent on
        if {"struct", "done"} <= self.seen:
            return DoraStatus.STOP
        return DoraStatus.CONTINUE
