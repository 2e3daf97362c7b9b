"""Prints the smoothed range and how many readings arrived."""
from dora import Node

node = Node()
count = 0
for event in node:
    if event["type"] == "INPUT":
        count += 1
        print(f"sample {event['metadata']['sample']}: range {event['value'][0].as_py():.3f} m")
print(f"logger: {count} readings")
