"""A simulated thermometer: one reading per timer tick, READINGS of them, then it exits."""
import math
import os

import pyarrow as pa
from dora import Node

READINGS = int(os.environ.get("READINGS", "10"))

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "tick":
        celsius = 21.0 + 3.0 * math.sin(sent / 2.0)
        node.send_output("temperature", pa.array([celsius]), {"reading": sent})
        sent += 1
        if sent == READINGS:
            break  # the script ends: its output closes, and the monitor hears it
