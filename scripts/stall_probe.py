"""How much a stalled drop_oldest reader holds back its sender (issue 19, point 2).

Runs a sender (numbered messages at a fixed rate) and two drop_oldest readers, `slow` and
`fast`, optionally a `queue_policy: block` reader `blk` of the same output, with
`dora-zenoh run`; stops `slow` (SIGSTOP) for a few seconds unless --no-stall, and prints the
sender's worst send_output time and what each reader got. A measurement, not a test: run it
on a quiet machine and compare with --no-stall.

    python scripts/stall_probe.py --size 2048 --count 30000 --rate 5000 [--mixed] [--no-stall]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dora_zenoh.wire import zconfig  # noqa: E402

SENDER = """
    import json, os, time
    from dora import Node
    node = Node()
    count, size, rate = int(os.environ["COUNT"]), int(os.environ["SIZE"]), float(os.environ["RATE"])
    while not os.path.exists("go"):
        time.sleep(0.01)
    worst, t0 = 0.0, time.perf_counter()
    for i in range(count):
        while time.perf_counter() < t0 + i / rate:
            time.sleep(0.0005)
        data = str(i).encode().ljust(size, b".")
        start = time.perf_counter()
        node.send_output("data", data)
        worst = max(worst, time.perf_counter() - start)
    json.dump({"worst_send_ms": worst * 1000, "seconds": time.perf_counter() - t0}, open("sender.json", "w"))
"""
READER = """
    import json, os
    from dora import Node
    node = Node()
    open(f"{node.node_id}.pid", "w").write(str(os.getpid()))
    got = 0
    for event in node:
        if event["type"] == "INPUT":
            got += 1
    json.dump({"got": got}, open(f"{node.node_id}.json", "w"))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--count", type=int, default=30000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--stall", type=float, default=3.0, help="seconds `slow` stays stopped")
    ap.add_argument("--no-stall", action="store_true")
    ap.add_argument("--mixed", action="store_true", help="add a queue_policy: block reader")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stall-probe-"))
    readers = ["slow", "fast"] + (["blk"] if args.mixed else [])
    nodes = [f"  - id: tx\n    path: sender.py\n    outputs: [data]\n    env: {{COUNT: '{args.count}', "
             f"SIZE: '{args.size}', RATE: '{args.rate}'}}"]
    for r in readers:
        policy = "queue_size: 10, queue_policy: block" if r == "blk" else "queue_size: 100000"
        nodes.append(f"  - id: {r}\n    path: reader.py\n    inputs:\n      data: {{source: tx/data, {policy}}}")
    (folder / "dataflow.yml").write_text("nodes:\n" + "\n".join(nodes) + "\n")
    (folder / "sender.py").write_text(textwrap.dedent(SENDER))
    (folder / "reader.py").write_text(textwrap.dedent(READER))
    endpoint = zconfig.free_tcp_endpoint()
    proc = subprocess.Popen([sys.executable, "-m", "dora_zenoh", "run", "dataflow.yml", "--endpoint", endpoint,
                             "--name", f"stall-probe-{os.getpid()}"], cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        while not all((folder / f"{r}.pid").exists() for r in readers):
            time.sleep(0.05)
        time.sleep(0.5)
        slow = int((folder / "slow.pid").read_text())
        if not args.no_stall:
            os.kill(slow, signal.SIGSTOP)
        (folder / "go").write_text("")
        if not args.no_stall:
            time.sleep(args.stall)
            os.kill(slow, signal.SIGCONT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    sender = json.loads((folder / "sender.json").read_text())
    got = {r: json.loads((folder / f"{r}.json").read_text())["got"] for r in readers}
    print(f"{args.size} B x {args.count} at {args.rate:g} Hz, slow stalled {0 if args.no_stall else args.stall:g} s"
          f"{', with a block reader' if args.mixed else ''}: worst send_output {sender['worst_send_ms']:.1f} ms, "
          f"sent in {sender['seconds']:.1f} s; received " + ", ".join(f"{r} {n}" for r, n in got.items()))


if __name__ == "__main__":
    main()
