"""`dora-zenoh foxglove`: a real dataflow served over the Foxglove WebSocket protocol, read by a
plain WebSocket client that subscribes and decodes (JSON channel and raw Arrow channel)."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import struct

import pytest
from conftest import start_cli

pytest.importorskip("foxglove")
websockets = pytest.importorskip("websockets")
pa = pytest.importorskip("pyarrow")


UNKNOWN = re.compile(r"Unknown channel ID: (\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def read_channels(url: str, topics: list[str], wanted: int) -> tuple[dict, list[tuple[str, bytes]]]:
    """Subscribe to ``topics``; return the advertised channels and messages, once ``wanted`` of
    each have arrived (the channels may be advertised at different times)."""
    got: list[tuple[str, bytes]] = []
    channels: dict[int, dict] = {}
    subscribed: dict[int, str] = {}
    for _ in range(100):  # the server may not listen yet
        try:
            ws = await websockets.connect(url, subprotocols=["foxglove.sdk.v1"])
            break
        except OSError:
            await asyncio.sleep(0.1)
    deadline = asyncio.get_running_loop().time() + 60  # inside the test's own timeout: its end says what came
    async with ws:
        while min(sum(t == name for t, _ in got) for name in topics) < wanted:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{wanted} messages of each of {topics} not in 60 s: channels "
                                     f"{sorted(c['topic'] for c in channels.values())}, subscribed "
                                     f"{sorted(subscribed.values())}, got {[t for t, _ in got][-5:]} ({len(got)})")
            msg = await asyncio.wait_for(ws.recv(), min(20, left))
            if isinstance(msg, str):
                doc = json.loads(msg)
                unknown = UNKNOWN.fullmatch(doc.get("message", "")) if doc["op"] == "status" else None
                if unknown and int(unknown[1]) in subscribed.values():
                    # foxglove-sdk 0.30.3 sends an advertise before it records the channel: a
                    # subscribe that gets there first is refused (seen 2 in 30 loaded runs). Again:
                    sub = next(s for s, c in subscribed.items() if c == int(unknown[1]))
                    await ws.send(json.dumps({"op": "subscribe",
                                              "subscriptions": [{"id": sub, "channelId": int(unknown[1])}]}))
                elif doc["op"] == "advertise":
                    for ch in doc["channels"]:
                        channels[ch["id"]] = ch
                        if ch["topic"] in topics and ch["id"] not in subscribed.values():
                            sub = len(subscribed) + 1
                            subscribed[sub] = ch["id"]
                            await ws.send(json.dumps({"op": "subscribe",
                                                      "subscriptions": [{"id": sub, "channelId": ch["id"]}]}))
            elif msg[0] == 1:  # message data: opcode, subscription id, log time, payload
                sub, _ = struct.unpack_from("<IQ", msg, 1)
                got.append((channels[subscribed[sub]]["topic"], msg[13:]))
    return channels, got


def test_foxglove_live_server(flow):
    flow.write("dataflow.yml", """
        nodes:
          - id: imu
            path: imu.py
            outputs: [acc, frame, label]
    """)
    flow.write("imu.py", """
        import pyarrow as pa
        from dora import Node
        node = Node()
        i = 0
        while True:
            node.send_output("acc", pa.array([float(i), -1.5, 9.81]))
            node.send_output("frame", bytes([i % 256]) * 16)  # raw bytes: no schema (dropped before 5 Dec)
            node.send_output("label", f"hello {i}")  # text: no schema either
            i += 1
            event = node.next(timeout=0.01)  # 100 Hz, and ends at STOP
            if event is None or event["type"] == "STOP":
                break
    """)
    run = flow.start("-q")
    port = free_port()
    server = start_cli("foxglove", "-d", flow.name, "--port", str(port), "--endpoint", flow.endpoint)
    topic = f"dora/{flow.name}/imu/acc"
    frame, label = f"dora/{flow.name}/imu/frame", f"dora/{flow.name}/imu/label"
    try:
        channels, got = asyncio.run(read_channels(f"ws://127.0.0.1:{port}", [topic, topic + "/@json", frame, label],
                                                  10))
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "dropped" not in err, err
    assert all(len(p) == 16 and len(set(p)) == 1 for t, p in got if t == frame)
    assert all(p.decode().startswith("hello ") for t, p in got if t == label)
    (fr,) = [c for c in channels.values() if c["topic"] == frame]
    assert fr["encoding"] == "application/octet-stream", fr
    raw = next(c for c in channels.values() if c["topic"] == topic)
    assert raw["encoding"] == "application/vnd.apache.arrow.stream" and raw["schemaName"] == "arrow:double"
    as_json = [json.loads(p)["value"] for t, p in got if t.endswith("/@json")]
    as_arrow = [pa.ipc.open_stream(p).read_next_batch().column(0).to_pylist() for t, p in got if t == topic]
    assert as_json and as_arrow
    for values in as_json + as_arrow:
        assert values[1:] == [-1.5, 9.81] and values[0] == int(values[0])
