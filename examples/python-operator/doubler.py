"""Doubles each number it gets (2022 form). Returning nothing means continue."""


class Operator:
    def on_input(self, input_id, value, send_output):
        doubled = 2 * int(value)
        print(f"doubler: {int(value)} -> {doubled}")
        send_output("doubled", str(doubled).encode())
