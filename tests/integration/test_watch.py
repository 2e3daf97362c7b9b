"""topic / node / graph / top against real running dataflows, started by `run` and by the coordinator."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from conftest import Flow, cli, wait_for

YAML = """
name: {name}
nodes:
  - id: talker
    path: talker.py
    inputs:
      tick: dora/timer/millis/10
    outputs:
      - speed
      - text
      - cmd
  - id: listener
    path: listener.py
    inputs:
      speed:
        source: talker/speed
        queue_size: 5
      text: talker/text
      cmd: talker/cmd
"""
TALKER = """
import pyarrow as pa
from dora import Node
node = Node()
n = 0
for event in node:
    if event["type"] == "INPUT":
        node.send_output("speed", pa.array([float(n), 2.5]), {"frame": "base"})
        node.send_output("text", f"hello {n}")
        n += 1
"""
# default=str: dora metadata carries a datetime "timestamp" (as in dora-rs)
LISTENER = """
import json
from dora import Node
node = Node()
for event in node:
    if event["type"] == "INPUT" and event["id"] == "cmd":
        with open("cmd.json", "a") as f:
            f.write(json.dumps({"value": event["value"].to_pylist(), "meta": event["metadata"]}, default=str) + "\\n")
"""


def write_watched(flow: Flow) -> None:
    flow.write("dataflow.yml", YAML.format(name=flow.name))
    flow.write("talker.py", TALKER)
    flow.write("listener.py", LISTENER)


def zcli(flow: Flow, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return cli(*args, "--endpoint", flow.endpoint, timeout=timeout)


def ok_json(res: subprocess.CompletedProcess):
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_running(flow: Flow) -> list:
    def listed():
        res = zcli(flow, "topic", "list", "-d", flow.name, "--json")
        if res.returncode != 0:
            return None
        rows = json.loads(res.stdout)
        return rows if len(rows) == 3 and all(r["sent"] > 0 for r in rows if r["topic"] != "talker/cmd") \
            else None
    return wait_for(listed, timeout=45, what="the dataflow's topics")


@pytest.fixture
def running(flow: Flow):
    write_watched(flow)
    proc = flow.start()
    try:
        wait_running(flow)
        yield flow
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_topic_list_text_and_json(running: Flow):
    rows = ok_json(zcli(running, "topic", "list", "-d", running.name, "-v", "--json"))
    speed = next(r for r in rows if r["topic"] == "talker/speed")
    assert speed["key"] == f"dora/{running.name}/talker/speed"
    assert speed["subscribers"] == [{"node": "listener", "input": "speed", "queue_size": 5,
                                     "policy": "drop_oldest"}]
    assert speed["type"] == "double" and speed["rate"] > 0
    text = zcli(running, "topic", "list")
    assert text.returncode == 0, text.stderr
    assert "talker/text" in text.stdout and "listener/text" in text.stdout


def test_topic_echo_formats(running: Flow):
    res = zcli(running, "topic", "echo", "talker/speed", "talker/text", "-n", "20", "--format", "json",
               "--timeout", "30s")
    msgs = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.returncode == 0 and len(msgs) == 20, res.stderr
    speeds = [m for m in msgs if m["key"].endswith("/speed")]
    texts = [m for m in msgs if m["key"].endswith("/text")]
    assert speeds and texts
    assert speeds[0]["type"] == "double" and speeds[0]["value"][1] == 2.5
    assert speeds[0]["params"] == {"frame": "base"} and isinstance(speeds[0]["seq"], int)
    assert texts[0]["value"].startswith("hello ")
    res = zcli(running, "topic", "echo", f"dora/{running.name}/talker/speed", "--once", "--no-arrays",
               "--timeout", "30s")  # (ros2's --once: -n 1)
    assert res.returncode == 0, res.stderr
    assert "<double[2]>" in res.stdout and "seq: " in res.stdout and res.stdout.rstrip().endswith("---")
    assert res.stdout.count("seq: ") == 1


def test_topic_hz_bw_info(running: Flow):
    (hz,) = [json.loads(x) for x in zcli(running, "topic", "hz", "talker/speed", "--duration", "4s",
                                          "--json").stdout.splitlines()]
    assert hz["key"].endswith("/talker/speed") and hz["rate"] > 0 and hz["period_mean"] > 0
    (bw,) = [json.loads(x) for x in zcli(running, "topic", "bw", "talker/text", "--duration", "4s",
                                          "--json").stdout.splitlines()]
    assert bw["bytes_per_s"] > 0 and 7 <= bw["mean_size"] <= 12  # "hello N"
    text = zcli(running, "topic", "hz", "talker/speed", "--duration", "2s")
    assert "average rate:" in text.stdout and "std dev:" in text.stdout
    # DATAFLOW/NODE/OUTPUT (the key without its prefix) is that output, not a key of no one's
    (hz,) = [json.loads(x) for x in zcli(running, "topic", "hz", f"{running.name}/talker/speed", "--duration",
                                          "2s", "--json").stdout.splitlines()]
    assert hz["key"] == f"dora/{running.name}/talker/speed" and hz["rate"] > 0, hz
    info = ok_json(zcli(running, "topic", "info", "talker/speed", "--json"))
    assert info["publisher"] == "talker" and info["type"] == "double"
    (sub,) = info["subscribers"]
    assert (sub["node"], sub["id"], sub["queue_size"], sub["policy"]) == ("listener", "speed", 5, "drop_oldest")
    assert sub["received"] > 0


def test_topic_pub_reaches_the_node(running: Flow):
    res = zcli(running, "topic", "pub", "talker/cmd", "[1, 2, 3]", "--type", "int32", "--count", "2",
               "--rate", "20", "--param", "who=test")
    assert res.returncode == 0, res.stderr
    lines = wait_for(lambda: (running.folder / "cmd.json").exists()
                     and (running.folder / "cmd.json").read_text().splitlines()[:2] if
                     len((running.folder / "cmd.json").read_text().splitlines()) >= 2 else None,
                     timeout=20, what="the injected messages")
    got = json.loads(lines[0])
    assert got["value"] == [1, 2, 3] and got["meta"]["who"] == "test"
    # the node did not count the injected messages as a gap in talker's sequence
    info = ok_json(zcli(running, "node", "info", "listener", "--json"))
    assert info["inputs"]["cmd"]["dropped"] == 0 and info["inputs"]["cmd"]["received"] == 2
    bad = zcli(running, "topic", "pub", "talker/cmd", "x", "--type", "int32")
    assert bad.returncode == 1 and "not a int32 value" in bad.stderr


def test_node_list_info_top(running: Flow):
    rows = ok_json(zcli(running, "node", "list", "-d", running.name, "--json"))
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {"talker", "listener"}
    assert by_id["talker"]["pid"] and by_id["talker"]["rss"] > 0 and by_id["talker"]["sent"] > 0
    info = ok_json(zcli(running, "node", "info", "talker", "--json"))
    assert info["outputs"]["speed"]["readers"] == ["listener/speed"]
    assert info["inputs"]["tick"]["source"] == "timer 10 ms"
    text = zcli(running, "node", "info", "listener")
    assert "speed <- talker/speed: queue_size 5, drop_oldest" in text.stdout
    top = ok_json(zcli(running, "top", "-d", running.name, "--once", "--json"))
    talker = next(r for r in top if r["id"] == "talker")
    assert talker["out_rate"] > 0 and talker["cpu"] is not None
    plain = zcli(running, "top", "--once")
    assert plain.returncode == 0 and "OUT/s" in plain.stdout and "listener" in plain.stdout
    missing = zcli(running, "node", "info", "nope")
    assert missing.returncode == 1 and "no running node 'nope'" in missing.stderr


def test_graph_of_running_dataflow(running: Flow):
    res = zcli(running, "graph", running.name, "--format", "json")
    g = ok_json(res)
    edges = {(e["src"], e["dst"], e["input"]) for e in g["edges"]}
    assert ("talker", "listener", "speed") in edges and ("timer:10000000", "talker", "tick") in edges


def test_nothing_running_is_a_clear_error(endpoint: str):
    res = cli("topic", "list", "--endpoint", endpoint)
    assert res.returncode == 1 and "nothing is running on" in res.stderr and "Traceback" not in res.stderr


def test_watch_coordinator_dataflow(coord, tmp_path: Path, flow_name: str):
    flow = Flow(tmp_path, flow_name, coord.endpoint)
    write_watched(flow)
    res = coord("start", str(flow.yaml), "--detach")
    assert res.returncode == 0, res.stderr
    try:
        wait_running(flow)
        msgs = zcli(flow, "topic", "echo", "talker/text", "-d", flow.name, "-n", "2", "--format", "json",
                    "--timeout", "30s").stdout.splitlines()
        assert len(msgs) == 2 and json.loads(msgs[0])["value"].startswith("hello")
        # restarts and status come from the coordinator, over its control socket
        rows = {r["id"]: r for r in ok_json(zcli(flow, "node", "list", "-d", flow.name, "--json"))}
        assert rows["talker"]["restarts"] == 0 and rows["talker"]["status"] == "running"
        # ... and never from the hub: a coordinator's dataflow answers no `list`/`logs` there
        # (a `run` does: test_node_list_info_top); only the control socket's owner reads its logs
        assert _hub_answers(coord.endpoint, f"dora/@dz/run/{flow.name}/list") == []
        res = coord("logs", flow.name, "talker")
        assert res.returncode == 0, res.stderr
    finally:
        coord("stop", flow.name, "--grace", "2s")


def _hub_answers(endpoint: str, key: str) -> list[str]:
    """What anyone on the hub gets back for ``key`` (a plain Zenoh client session)."""
    import zenoh

    from dora_zenoh.wire import zconfig

    conf = zconfig.peer_config([endpoint], [])
    conf.insert_json5("mode", '"client"')
    with zenoh.open(conf) as session:
        return [str(r.ok.key_expr) for r in session.get(key, timeout=2.0, target=zenoh.QueryTarget.ALL)
                if r.ok is not None]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _in_chromium(*args: str) -> subprocess.CompletedProcess:
    """Headless Chromium (Debian's) with a throwaway profile and no network of its own."""
    base = [_chromium() or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([*base, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_graph_html_in_headless_chromium(flow: Flow):
    write_watched(flow)
    out = flow.folder / "graph.html"
    res = cli("graph", str(flow.yaml), "-o", str(out))
    assert res.returncode == 0, res.stderr
    page = out.read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    dom = _in_chromium("--dump-dom", out.as_uri())
    for vertex in ("talker", "listener", "timer 10 ms"):
        assert f">{vertex}</text>" in dom.stdout
    assert dom.stdout.count('class="edge"') == 4  # tick, speed, text, cmd
    assert "speed [5]" in dom.stdout
    png = flow.folder / "graph.png"
    _in_chromium("--window-size=900,500", f"--screenshot={png}", out.as_uri())
    assert png.exists()
    colours = _png_colours(png.read_bytes())
    assert len(colours) > 20  # boxes, text, edges: not a blank page
    assert (0xDB, 0xEA, 0xFE) in colours  # the node boxes' fill


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_graph_html_of_a_dataflow_on_several_machines_in_headless_chromium(tmp_path: Path):
    """Each node says its machine, in the machine's colour, and edges between machines are dashed."""
    for f in ("camera.py", "detector.py", "motors.py"):
        (tmp_path / f).write_text("")
    yml = tmp_path / "robot.yml"
    yml.write_text(textwrap.dedent("""
        nodes:
          - id: camera
            path: camera.py
            deploy: {machine: robot}
            inputs: {tick: dora/timer/millis/33}
            outputs: [image]
          - id: detector
            path: detector.py
            deploy: {machine: offboard}
            inputs: {image: camera/image}
            outputs: [boxes]
          - id: motors
            path: motors.py
            deploy: {machine: robot}
            inputs: {boxes: detector/boxes}
    """))
    out = tmp_path / "graph.html"
    res = cli("graph", str(yml), "-o", str(out))
    assert res.returncode == 0, res.stderr
    dom = _in_chromium("--dump-dom", out.as_uri())
    assert dom.stdout.count(">on robot</text>") == 2 and dom.stdout.count(">on offboard</text>") == 1
    assert dom.stdout.count('class="edge crosses"') == 2 and dom.stdout.count('class="edge"') == 1
    png = tmp_path / "graph.png"
    _in_chromium("--window-size=1100,420", f"--screenshot={png}", out.as_uri())
    assert png.exists()
    colours = _png_colours(png.read_bytes())
    assert (0xB4, 0x53, 0x09) in colours and (0x0F, 0x76, 0x6E) in colours  # the two machines' outlines


def _png_colours(data: bytes) -> set[tuple[int, int, int]]:
    """Distinct RGB colours of a PNG (8-bit RGB/RGBA, non-interlaced: what Chromium writes)."""
    import struct
    import zlib

    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _depth, colour = struct.unpack(">IIBB", body[:10])
            channels = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    colours = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, channels * 7):
            colours.add(tuple(line[x:x + 3]))
        prev = line
    return colours


ZENOH_CLI = shutil.which("zenoh", path=str(Path(sys.executable).parent)) or shutil.which("zenoh")


@pytest.mark.skipif(ZENOH_CLI is None, reason="PyPI's zenoh-cli is not installed")
def test_zenoh_cli_decoder_on_a_running_dataflow(running: Flow):
    proc = subprocess.Popen([ZENOH_CLI, "--connect", running.endpoint, "--cfg", "scouting/multicast/enabled:false",
                             "subscribe", "-k", "dora/**", "--decoder", "dora"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= 6:
                break
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and "failed" not in err
    assert any(f"dora/{running.name}/talker/speed: double[2] [" in x for x in lines)
    assert any(f"dora/{running.name}/talker/text: hello " in x for x in lines)


def test_a_stuck_watcher_never_slows_the_dataflow(running: Flow):
    """An `echo` whose output nobody reads blocks in its own write; the dataflow goes on."""
    stuck = subprocess.Popen([sys.executable, "-m", "dora_zenoh", "topic", "echo", "talker/speed", "talker/text",
                              "--format", "json", "--endpoint", running.endpoint],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        import time

        # ~300 B per message at 200 msg/s fills the 64 KiB pipe in well under a second once it runs
        def stuck_now():
            return not stuck.poll() and time.sleep(3) is None
        wait_for(stuck_now, timeout=10, what="the echo to run")

        def received():
            return ok_json(zcli(running, "node", "info", "listener", "--json"))["received"]
        before = received()
        wait_for(lambda: received() > before + 100, timeout=30, what="the listener to keep receiving")
        assert stuck.poll() is None  # still there, still stuck in its write
    finally:
        stuck.kill()
        stuck.wait()
