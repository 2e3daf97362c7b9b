"""Prints every input it gets (today's Node API) until its inputs close."""
from dora import Node


def as_bytes(value) -> bytes:
    """event["value"] is a pyarrow array when pyarrow is installed, else bytes."""
    return bytes(value.to_pylist()) if hasattr(value, "to_pylist") else bytes(value)


node = Node()
count = 0
for event in node:
    if event["type"] == "INPUT":
        count += 1
        data = as_bytes(event["value"])
        # The counter sends its count as one byte; the pipelines send text.
        shown = int.from_bytes(data, "little") if event["id"] == "counter" else data.decode()
        # dora adds "timestamp" (the send time, a UTC datetime) to every input: not shown here
        meta = {k: v for k, v in event["metadata"].items() if k != "timestamp"}
        print(f"printer: {event['id']} = {shown}" + (f" {meta}" if meta else ""))
    elif event["type"] == "INPUT_CLOSED":
        print(f"printer: input {event['id']} closed")
print(f"printer: received {count} messages")
