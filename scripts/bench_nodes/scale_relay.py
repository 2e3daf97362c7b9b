"""Scale probe, relay or sink: forward every `in` on `out` (if declared), count what came.

On its first input it writes STAMP_DIR/<id>.first (time.time()), so the harness sees
the dataflow deliver while it runs; at the end STAMP_DIR/<id>.json holds how many it
got and, for a last reader (FORWARD unset), the first sequence number (0 if every edge
delivered from the first message). A relay does not look into the value: reading it
would import pyarrow (~0.15 s of CPU) on the first message at every hop of a chain.

Environment: STAMP_DIR, NODE_ID, FORWARD ("1": forward).
"""
from __future__ import annotations

import json
import os
import time

from dora import Node


def main() -> None:
    """Forward (or just count) until the input closes or STOP."""
    node = Node()
    me = os.environ["NODE_ID"]
    stamps = os.environ["STAMP_DIR"]
    forward = os.environ.get("FORWARD") == "1"
    with open(os.path.join(stamps, f"{me}.pid"), "w") as f:  # for hop_cpu.py (see scale_source.py)
        f.write(str(os.getpid()))
    first, stamped, count = None, False, 0
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        if not stamped:  # once (`first` stays None in a relay: it does not read the value)
            stamped = True
            stamp = os.path.join(stamps, f"{me}.first")
            with open(stamp + ".tmp", "w") as f:
                f.write(repr(time.time()))
            os.replace(stamp + ".tmp", stamp)  # the harness never reads half a stamp
            first = None if forward else event["value"][0].as_py()
        count += 1
        if forward:
            node.send_output("out", event["value"])
    with open(os.path.join(stamps, f"{me}.json"), "w") as f:
        json.dump({"first_seq": first, "count": count}, f)


if __name__ == "__main__":
    main()
