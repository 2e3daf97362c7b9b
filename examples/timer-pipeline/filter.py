"""Exponential moving average of the range readings."""
import pyarrow as pa
from dora import Node

ALPHA = 0.3

node = Node()
smoothed = None
for event in node:
    if event["type"] == "INPUT":
        reading = event["value"][0].as_py()
        smoothed = reading if smoothed is None else ALPHA * reading + (1 - ALPHA) * smoothed
        node.send_output("smoothed", pa.array([smoothed]), event["metadata"])
