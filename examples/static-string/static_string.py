"""Sends a string COUNT times, with metadata, then exits (its output closes)."""
import os

from dora import Node

node = Node()
for i in range(int(os.environ.get("COUNT", "100"))):
    node.send_output("string", b"Hello World", {"index": i})
