"""Prints every input event until the sender closes its output."""
from dora import Node

node = Node()
count = 0
for event in node:
    if event["type"] == "INPUT":
        count += 1
        value = event["value"]
        text = bytes(value.to_numpy()) if hasattr(value, "to_numpy") else bytes(value)
        print(f"id: {event['id']}, value: {text.decode()}, index: {event['metadata'].get('index')}")
    elif event["type"] == "INPUT_CLOSED":
        print(f"input {event['id']} closed")
    elif event["type"] == "STOP":
        print("stop")

print(f"printer: received {count} messages")
