"""Prints each reading it gets, flags those above LIMIT, and stops when its input closes."""
import os

from dora import Node

LIMIT = float(os.environ.get("LIMIT", "23.0"))
UNIT = os.environ.get("UNIT", "°C")

node = Node()
count = 0
for event in node:
    if event["type"] == "INPUT":
        count += 1
        value = event["value"][0].as_py()        # a pyarrow array of one float
        reading = event["metadata"]["reading"]   # the sender's metadata
        flag = "  <- too warm" if value > LIMIT else ""
        print(f"reading {reading}: {value:.1f} {UNIT}{flag}")
    elif event["type"] == "INPUT_CLOSED":
        print(f"input {event['id']} closed")
    elif event["type"] == "STOP":
        print("stop")
print(f"monitor: {count} readings")
