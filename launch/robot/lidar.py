"""Simulated lidar: 360 float32 ranges per scan; an obstacle drifts in and out ahead."""
import math
from array import array

from dora import Node

node = Node()
scan_no = 0
for event in node:
    if event["type"] != "INPUT":
        continue
    obstacle = 0.5 + 1.5 * (1 + math.sin(scan_no / 5.0)) / 2  # 0.5 m .. 2.0 m, period ~1.6 s
    ranges = array("f", (obstacle if abs(angle) < 10 else 5.0 for angle in range(-180, 180)))
    node.send_output("scan", ranges.tobytes(), {"scan": scan_no, "frame_id": "laser"})
    scan_no += 1
