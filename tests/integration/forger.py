"""A foreign Zenoh session for the security tests (run as a script, not collected by pytest).

It dials ENDPOINTS (with --tls, a machine certificate's settings; with --credentials, a
read-only observer's user:password file), reads NODE/OUTPUT, and forges that output, the
node's end of stream and the dataflow's stop and exited/NODE facts. It prints how many peers
it linked to and how many real messages it read; --done names a file written at the end.
"""
from __future__ import annotations

import argparse
import json
import time

import zenoh

args = argparse.ArgumentParser()
args.add_argument("name")
args.add_argument("node")
args.add_argument("output")
args.add_argument("endpoints", nargs="+")
args.add_argument("--tls")
args.add_argument("--credentials")
args.add_argument("--done")
args.add_argument("--settle", type=float, default=1.0, help="seconds to let gossip link it, if it is let in")
a = args.parse_args()

conf = zenoh.Config()
if a.credentials:
    user, _, password = open(a.credentials).read().strip().partition(":")
    conf.insert_json5("transport/auth/usrpwd", json.dumps({"user": user, "password": password}))
if a.tls:
    conf.insert_json5("transport/link/tls", json.dumps(json.load(open(a.tls))))
conf.insert_json5("mode", '"peer"')
conf.insert_json5("scouting/multicast/enabled", "false")
conf.insert_json5("scouting/delay", "0")
conf.insert_json5("connect/endpoints", json.dumps(a.endpoints))
received = []
key = f"dora/{a.name}/{a.node}/{a.output}"
with zenoh.open(conf) as s:
    s.declare_subscriber(key, lambda sample: received.append(1))
    time.sleep(a.settle)
    live = f"dora/@dz/live/{a.name}"
    tokens = [s.liveliness().declare_token(f"{live}/stop"), s.liveliness().declare_token(f"{live}/exited/{a.node}")]
    for _ in range(40):
        s.put(key, b"FORGED")
        s.put(f"dora/@dz/eos/{a.name}/{a.node}", json.dumps({"node": a.node, "outputs": {a.output: 0}}))
        time.sleep(0.05)
    print("linked peers:", len(list(s.info.peers_zid())), "received:", len(received), flush=True)
    if a.done:
        open(a.done, "w").write("done")
    time.sleep(0.5)
