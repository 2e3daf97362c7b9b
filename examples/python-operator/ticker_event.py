"""Sends 1, 2, ... 10 (as text, with the count as metadata), then stops (on_event form)."""
from dora import DoraStatus

LAST = 10


class Operator:
    def __init__(self):
        self.n = 0

    def on_event(self, dora_event, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            self.n += 1
            send_output("value", str(self.n), {"n": self.n})
            if self.n >= LAST:
                return DoraStatus.STOP
        return DoraStatus.CONTINUE
