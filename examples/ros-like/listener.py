"""A ROS-like listener: subscribes to the talker's output by its key suffix, talker/chatter."""
import os

from dora_zenoh import Node

node = Node("listener", inputs={"chatter": "talker/chatter"})
wanted = int(os.environ.get("COUNT", "0"))  # 0: listen until Ctrl-C
got = 0
for event in node:
    if event["type"] == "INPUT":
        print(f"heard: {event.raw.decode()}", flush=True)
        got += 1
        if got == wanted:
            break
