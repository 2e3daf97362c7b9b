"""Writes one line per message it gets (from the published nodes), and acknowledges each."""
import os

from dora import Node

node = Node()
out = open(os.environ["PROBE_OUT"], "a", encoding="utf-8")  # noqa: SIM115
n = 0
for event in node:
    if event["type"] != "INPUT":
        continue
    n += 1
    if n > 8:
        continue  # what the selector sends as its inputs close depends on their closing order
    meta = event["metadata"]
    shown = {k: v for k, v in sorted(meta.items()) if k != "timestamp"}
    out.write(f"{n} {event['id']} {type(event['value']).__name__} {event['value'].to_pylist()} {shown} "
              f"timestamp={type(meta.get('timestamp')).__name__}\n")
    out.flush()
    node.send_output("ack", b"")
    if n == 8:
        break
