"""Sends 1, 2, ... 10 (as text), one per timer tick, then stops (2022 form)."""
from dora import DoraStatus

LAST = 10


class Operator:
    def __init__(self):
        self.n = 0

    def on_input(self, input_id, value, send_output):
        self.n += 1
        send_output("value", str(self.n).encode())
        return DoraStatus.STOP if self.n >= LAST else DoraStatus.CONTINUE
