"""A counter operator in the 2022 form: counts timer ticks and publishes the count as one byte.

Like the original docs' examples it brings its own DoraStatus enum (first member named
OK); dora-zenoh only looks at the values: 0 continue, 1 stop this operator, 2 stop all.
"""
from enum import Enum

TICKS = 10


class DoraStatus(Enum):
    OK = 0
    STOP = 1
    STOP_ALL = 2


class Operator:
    """Constructed once, without arguments, when the runtime starts."""

    def __init__(self):
        self.counter = 0

    def on_input(self, input_id: str, value: bytes, send_output) -> DoraStatus:
        self.counter += 1
        print(f"counter: got {input_id} ({len(value)} bytes), count is now {self.counter}")
        send_output("counter", (self.counter % 256).to_bytes(1, "little"))
        return DoraStatus.STOP if self.counter >= TICKS else DoraStatus.OK
