"""Slows down and turns away when an obstacle is closer than SAFE_DISTANCE."""
import json
import os

from dora import Node

CRUISE = float(os.environ.get("CRUISE_SPEED", "0.5"))
SAFE = float(os.environ.get("SAFE_DISTANCE", "0.8"))

node = Node()
nearest = None
for event in node:
    if event["type"] != "INPUT":
        continue
    if event["id"] == "obstacle":
        nearest = json.loads(bytes(event["value"].to_numpy()) if hasattr(event["value"], "to_numpy")
                             else event["value"])
    elif event["id"] == "control":
        if nearest is None:
            cmd = {"linear": 0.0, "angular": 0.0}  # no perception yet: stay put
        elif nearest["distance"] < SAFE:
            cmd = {"linear": 0.0, "angular": 0.6}
        else:
            cmd = {"linear": CRUISE, "angular": 0.0}
        node.send_output("cmd_vel", json.dumps(cmd))
