"""Sends the same string 100 times: the 2022 node API (bytes in, bytes out)."""
from dora import Node

node = Node()

for _ in range(100):
    node.send_output("string", b"Hello World")
