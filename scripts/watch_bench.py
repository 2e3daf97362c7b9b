"""How fast a topic can be before `topic hz`/`bw` stop keeping up (a short, bounded measurement).

Publishes SIZE-byte messages with dora-zenoh attachments as fast as it can for SECONDS
on a hub of its own (loopback), while `dora-zenoh topic hz|bw --json` watches; prints what
the publisher sent and what the tool reported. The machine's load skews both: say so.

    python scripts/watch_bench.py --size 8 --seconds 5
    python scripts/watch_bench.py --size 1048576 --seconds 5 --tool bw
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import zenoh

from dora_zenoh.wire import codec, keys, zconfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--tool", choices=["hz", "bw", "none"], default="hz",
                    help="none: nobody watches (the publisher's own rate, to compare)")
    args = ap.parse_args()
    hub = zconfig.free_tcp_endpoint()
    session = zenoh.open(zconfig.peer_config([], [hub]))
    key = keys.data_key("dora", "bench", "src/out")
    # a node token and stats queryable, so `topic hz src/out` resolves the name as for a real node
    token = session.liveliness().declare_token(keys.node_token("dora", "bench", "src"))
    sent = [0]
    stats = session.declare_queryable(keys.stats_key("dora", "bench", "src"), lambda q: q.reply(
        keys.stats_key("dora", "bench", "src"), json.dumps({"sent": {"out": sent[0]}, "inputs": {}, "pid": os.getpid()})))
    pub = session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK)
    watched = args.tool != "none"
    tool = subprocess.Popen([sys.executable, "-m", "dora_zenoh", "topic", args.tool, "src/out", "--endpoint", hub,
                             "--duration", f"{args.seconds}s", "--window", f"{args.seconds}s", "--json"]
                            if watched else [sys.executable, "-c", "import time; time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    payload = b"x" * args.size
    time.sleep(2.5)  # the tool starts and subscribes
    t0 = time.monotonic()
    end = t0 + args.seconds
    n = 0
    while time.monotonic() < end and tool.poll() is None:
        pub.put(payload, attachment=codec.SEQ_TS % (n, time.time_ns()))
        n += 1
        sent[0] = n
    elapsed = time.monotonic() - t0
    if not watched:
        tool.kill()
    out, _ = tool.communicate(timeout=60)
    report = json.loads(out.strip().splitlines()[-1]) if watched and out.strip() else {}
    print(json.dumps({"size": args.size, "published_per_s": round(n / elapsed), "published_bytes_per_s":
                      round(n * args.size / elapsed), "tool": args.tool, "tool_rate": round(report.get("rate", 0)),
                      "tool_bytes_per_s": round(report.get("bytes_per_s", 0)), "seen": report.get("seen"),
                      "missed": report.get("missed")}))
    token.undeclare()
    stats.undeclare()
    session.close()


if __name__ == "__main__":
    main()
