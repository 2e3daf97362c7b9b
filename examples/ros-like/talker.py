"""A ROS-like talker: no YAML, no runner. Publishes "hello N" on dora/default/talker/chatter at 10 Hz."""
import os
import time

from dora_zenoh import Node

node = Node("talker", outputs=["chatter"])
for i in range(int(os.environ.get("COUNT", "1000000"))):
    node.send_output("chatter", f"hello {i}")
    time.sleep(0.1)
