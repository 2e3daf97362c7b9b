"""Relay for scripts/hop_cpu.py: forward every message of input `in` on output `out`.

MODE=dora (default): ``for event in node: node.send_output("out", event["value"])``.
MODE=plain: the same hop in plain zenoh-python on the session a dora-zenoh node opens
(same links, same Zenoh runtime), so both can sit in one chain, under the same load.
Either way the thread CPU time (``time.thread_time_ns``) of receiving (from the end of the
last send to the message in hand) and of sending is summed, and every 100 messages
STAMP_DIR/<id>.split.json gets the totals. Environment: STAMP_DIR, NODE_ID, MODE.
"""
from __future__ import annotations

import json
import os
import time

_cpu = time.thread_time_ns


def _dump(path: str, count: int, recv_ns: int, send_ns: int) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump({"count": count, "recv_ns": recv_ns, "send_ns": send_ns}, f)
    os.replace(path + ".tmp", path)


def plain() -> None:
    import zenoh

    from dora_zenoh.node.config import open_runner_session
    from dora_zenoh.wire import codec, keys
    from dora_zenoh.wire.contract import NodeConfig

    cfg = NodeConfig.from_json(os.environ["DORA_ZENOH_NODE_CONFIG"])
    session, _ = open_runner_session(cfg)
    sub = session.declare_subscriber(cfg.inputs["in"].key, zenoh.handlers.RingChannel(1000))
    pub = session.declare_publisher(cfg.outputs["out"], encoding=codec.ENC_BYTES,
                                    congestion_control=zenoh.CongestionControl.DROP)
    token = session.liveliness().declare_token(keys.node_token(cfg.prefix, cfg.dataflow, cfg.node))
    path = os.path.join(os.environ["STAMP_DIR"], f"{os.environ['NODE_ID']}.split.json")
    count = recv_ns = send_ns = 0
    t0 = _cpu()
    try:
        while True:
            sample = sub.recv()
            t1 = _cpu()
            pub.put(sample.payload, encoding=sample.encoding, attachment=sample.attachment)
            t2 = _cpu()
            recv_ns += t1 - t0
            send_ns += t2 - t1
            t0 = t2
            count += 1
            if count % 100 == 0:
                _dump(path, count, recv_ns, send_ns)
    except zenoh.ZError:
        pass
    finally:
        token.undeclare()
        session.close()


def dora() -> None:
    from dora import Node

    node = Node()
    path = os.path.join(os.environ["STAMP_DIR"], f"{os.environ['NODE_ID']}.split.json")
    count = recv_ns = send_ns = 0
    t0 = _cpu()
    for event in node:
        if event["type"] != "INPUT":
            continue
        value = event["value"]
        t1 = _cpu()
        node.send_output("out", value)
        t2 = _cpu()
        recv_ns += t1 - t0
        send_ns += t2 - t1
        t0 = t2
        count += 1
        if count % 100 == 0:
            _dump(path, count, recv_ns, send_ns)


if __name__ == "__main__":
    # Our pid, for hop_cpu.py: a node forked from the fork server shows the zygote's environment
    # in /proc, not its own.
    with open(os.path.join(os.environ["STAMP_DIR"], f"{os.environ['NODE_ID']}.pid"), "w") as pid_file:
        pid_file.write(str(os.getpid()))
    plain() if os.environ.get("MODE") == "plain" else dora()
