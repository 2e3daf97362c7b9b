"""Drives the published nodes of packages.yml.in step by step: each step waits for the
sink's acknowledgements, so what the sink sees is the same under any runtime."""
import pyarrow as pa
from dora import Node

node = Node()
acks = 0


def wait_acks(count: int) -> None:
    global acks
    while acks < count:
        event = node.next(timeout=30)
        if event is None or event["type"] == "ERROR":
            raise SystemExit(f"gen: no acknowledgement {count}: {event!r}")
        if event["type"] == "INPUT" and event["id"] == "ack":
            acks += 1


wait_acks(1)  # the selector's first "selected" (policy: vr starts disabled)
node.send_output("policy_cmd", pa.array([1.0]), {"step": 1})
wait_acks(2)
node.send_output("vr_enabled", pa.array([True]))
wait_acks(3)
node.send_output("vr_cmd", pa.array([2.0]), {"step": 3})
wait_acks(4)
node.send_output("policy_cmd", pa.array([3.0]), {"step": 4})  # not the selected source: dropped
node.send_output("vr_cmd", pa.array([4.0]), {"step": 5})
wait_acks(5)
node.send_output("echo", pa.StructArray.from_arrays([pa.array([1]), pa.array(["a"])], names=["x", "y"]),
                 {"step": 6, "tags": ["a", "b"]})
wait_acks(6)
new_position = pa.array([float(i) for i in range(8)], pa.float32())
node.send_output("move_position", pa.StructArray.from_arrays([new_position], names=["new_position"]))
wait_acks(7)  # the dummy arm's first "status"
node.send_output("request_position", pa.array([0]))
wait_acks(8)
