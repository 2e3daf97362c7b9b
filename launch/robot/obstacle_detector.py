"""Finds the nearest return within +-30 degrees of straight ahead."""
import json
from array import array

from dora import Node

node = Node()
for event in node:
    if event["type"] != "INPUT":
        continue
    ranges = array("f")
    ranges.frombytes(bytes(event["value"]) if not hasattr(event["value"], "to_numpy")
                     else event["value"].to_numpy().tobytes())
    forward = [(r, i - 180) for i, r in enumerate(ranges) if abs(i - 180) <= 30]
    distance, angle = min(forward)
    node.send_output("obstacle", json.dumps({"distance": round(distance, 3), "angle": angle}),
                     event["metadata"])
