"""Doubles each number it gets and passes its metadata on (on_event form)."""
from dora import DoraStatus


def as_text(value) -> str:
    """event["value"] is a pyarrow array when pyarrow is installed, else bytes."""
    return bytes(value.to_pylist() if hasattr(value, "to_pylist") else value).decode()


class Operator:
    def on_event(self, dora_event, send_output) -> DoraStatus:
        kind = dora_event["type"]
        if kind == "INPUT":
            n = int(as_text(dora_event["value"]))
            print(f"doubler: {n} -> {2 * n}")
            send_output("doubled", str(2 * n), dora_event["metadata"])
        elif kind == "INPUT_CLOSED":
            print(f"doubler: input {dora_event['id']} closed")
        elif kind == "STOP":
            print("doubler: stop")
        return DoraStatus.CONTINUE
