"""Applies velocity commands; stops the motors when commands go stale."""
import json
import time

from dora import Node

STALE_S = 0.5

node = Node()
state, last_cmd = None, 0.0
for event in node:
    if event["type"] == "STOP":
        print("motors: stop (shutdown)")
        break
    if event["type"] != "INPUT":
        continue
    if event["id"] == "cmd_vel":
        value = event["value"]
        cmd = json.loads(bytes(value.to_numpy()) if hasattr(value, "to_numpy") else value)
        last_cmd = time.monotonic()
        new_state = "turning" if cmd["angular"] else ("driving" if cmd["linear"] else "idle")
    else:  # watchdog tick
        new_state = state if time.monotonic() - last_cmd < STALE_S else "stopped (no commands)"
    if new_state != state:
        print(f"motors: {new_state}")
        state = new_state
