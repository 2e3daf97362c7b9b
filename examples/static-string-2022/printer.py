"""Prints every input: the 2022 node API, `for input_id, value in node`."""
from dora import Node

node = Node()

count = 0
for input_id, value in node:
    count += 1
    print(f"From Python, id: {input_id}, value: {value}")

print(f"printer: received {count} messages")
