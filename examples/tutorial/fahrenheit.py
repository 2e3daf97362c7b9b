"""An operator: converts each Celsius reading to Fahrenheit and passes its metadata on."""
import pyarrow as pa
from dora import DoraStatus


class Operator:
    def __init__(self):
        self.converted = 0

    def on_event(self, dora_event, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            celsius = dora_event["value"][0].as_py()
            send_output("fahrenheit", pa.array([celsius * 9 / 5 + 32]), dora_event["metadata"])
            self.converted += 1
        elif dora_event["type"] == "STOP":
            print(f"converted {self.converted} readings")
        return DoraStatus.CONTINUE
