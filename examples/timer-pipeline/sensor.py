"""A simulated range sensor, sampled on a runtime timer."""
import math
import os

import pyarrow as pa
from dora import Node

SAMPLES = int(os.environ.get("SAMPLES", "25"))

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "tick":
        reading = 2.0 + math.sin(sent / 5.0)
        node.send_output("range", pa.array([reading]), {"sample": sent})
        sent += 1
        if sent >= SAMPLES:
            break
