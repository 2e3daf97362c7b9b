"""Probe Zenoh's advanced publisher/subscriber (zenoh.ext) across a link outage (needs root).

Two network namespaces joined by a veth pair; a subscriber listens in one, a publisher dials it
from the other and sends 16 B at 20 Hz with a cache of --cache samples; the link goes down for
--outage seconds. Prints what the subscriber got (in order? holes?) and the misses Zenoh reported.
The figures in docs/design/outage.md came from this probe:

    sudo .venv/bin/python scripts/outage_probe.py --cache 20 --outage 12
    sudo .venv/bin/python scripts/outage_probe.py --cache 1000 --outage 12 --count 250  # a silent tail
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

KEY = "probe/outage"


def _session(listen: str | None, connect: str | None):
    import zenoh

    conf = zenoh.Config()
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("transport/shared_memory/enabled", "false")
    if listen:
        conf.insert_json5("listen/endpoints", json.dumps([listen]))
    if connect:
        conf.insert_json5("connect/endpoints", json.dumps([connect]))
    return zenoh.open(conf)


def publisher(connect: str, cache: int, count: int) -> None:
    import zenoh
    import zenoh.ext as zext

    with _session(None, connect) as s:
        pub = zext.declare_advanced_publisher(s, KEY, congestion_control=zenoh.CongestionControl.BLOCK,
                                              cache=zext.CacheConfig(cache),
                                              sample_miss_detection=zext.MissDetectionConfig(heartbeat=0.5))
        time.sleep(3)
        for i in range(count):
            pub.put(str(i).encode())
            time.sleep(0.05)
        time.sleep(30)  # keep the cache (and the heartbeat) for the subscriber to recover from


def subscriber(listen: str, seconds: float) -> None:
    import zenoh
    import zenoh.ext as zext

    t0 = time.monotonic()
    got: list[tuple[int, float]] = []
    misses: list[int] = []
    with _session(listen, None) as s:
        sub = zext.declare_advanced_subscriber(
            s, KEY, zenoh.handlers.Callback(lambda x: got.append((int(x.payload.to_bytes()), time.monotonic() - t0)),
                                            indirect=False),
            recovery=zext.RecoveryConfig(heartbeat=True))
        listener = sub.sample_miss_listener(zenoh.handlers.Callback(lambda m: misses.append(m.nb)))
        time.sleep(seconds)
        del listener
    values = [v for v, _ in got]
    holes = [(a, b) for a, b in zip(values, values[1:], strict=False) if b != a + 1]
    print(json.dumps({"received": len(values), "in_order": values == sorted(set(values)), "holes": holes,
                      "misses_reported": misses, "last_at_s": round(got[-1][1], 2) if got else None}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=int, default=20)
    ap.add_argument("--outage", type=float, default=12.0)
    ap.add_argument("--count", type=int, default=600, help="messages the publisher sends (20 Hz)")
    ap.add_argument("--role", choices=["pub", "sub"], help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "pub":
        publisher(args.endpoint, args.cache, args.count)
        return 0
    if args.role == "sub":
        subscriber(args.endpoint, args.seconds)
        return 0
    if os.geteuid() != 0:
        print("needs root: it makes network namespaces and a veth pair", file=sys.stderr)
        return 1
    tag = str(os.getpid())
    ns, dev = {m: f"op{m}{tag}" for m in "ab"}, {m: f"ov{m}{tag}" for m in "ab"}
    addr = {"a": "10.233.7.1", "b": "10.233.7.2"}
    ip = lambda *a: subprocess.run(["ip", *a], check=True, capture_output=True, timeout=20)  # noqa: E731
    procs: list[subprocess.Popen] = []
    try:
        for m in "ab":
            ip("netns", "add", ns[m])
        ip("link", "add", dev["a"], "type", "veth", "peer", "name", dev["b"])
        for m in "ab":
            ip("link", "set", dev[m], "netns", ns[m])
            ip("-n", ns[m], "addr", "add", f"{addr[m]}/24", "dev", dev[m])
            ip("-n", ns[m], "link", "set", dev[m], "up")
            ip("-n", ns[m], "link", "set", "lo", "up")
        endpoint = f"tcp/{addr['b']}:7500"
        me = [sys.executable, os.path.abspath(__file__)]
        seconds = 3 + args.count * 0.05 + args.outage + 10
        sub = subprocess.Popen(["ip", "netns", "exec", ns["b"], *me, "--role", "sub", "--endpoint", endpoint,
                                "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
        procs.append(sub)
        time.sleep(1)
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns["a"], *me, "--role", "pub", "--endpoint", endpoint,
                                       "--cache", str(args.cache), "--count", str(args.count)]))
        time.sleep(10)
        ip("-n", ns["a"], "link", "set", dev["a"], "down")
        print(f"link down {args.outage:g} s", flush=True)
        time.sleep(args.outage)
        ip("-n", ns["a"], "link", "set", dev["a"], "up")
        print("link up", flush=True)
        out, _ = sub.communicate(timeout=seconds + 30)
        print(out.strip())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for m in "ab":
            subprocess.run(["ip", "netns", "del", ns[m]], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
