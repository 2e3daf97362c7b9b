"""A closed (--secure) dataflow: a foreign Zenoh session cannot publish on its keys nor forge its
end-of-stream, exit and stop facts. The same attack on an open dataflow succeeds (so the test can fail).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, wait_for

FORGER = Path(__file__).with_name("forger.py")  # a foreign session that forges data and facts

SENDER = """
import os, time
from dora import Node
node = Node()
n = 0
deadline = time.monotonic() + 40
while not os.path.exists("attacked") and time.monotonic() < deadline:
    node.send_output("data", str(n).encode()); n += 1
    time.sleep(0.05)
for _ in range(5):
    node.send_output("data", str(n).encode()); n += 1
open("sent.txt", "w").write(str(n))
"""

SENDER_TO_RECEIVER = """
    nodes:
      - id: sender
        path: sender.py
        outputs: [data]
      - id: receiver
        path: receiver.py
        inputs:
          data: sender/data
"""

RECORDER = """
import json
from dora import Node
events = []
for event in Node():
    entry = {"type": event["type"], "id": event["id"]}
    if event["type"] == "INPUT":
        entry["data"] = event.raw.decode()
    events.append(entry)
json.dump(events, open("result.json", "w"))
"""


@pytest.mark.parametrize("secure, observer", [(True, False), (True, True), (False, False)],
                         ids=["closed", "closed-observer", "open"])
def test_foreign_session_cannot_reach_a_closed_dataflow(flow, secure, observer):
    flow.write("dataflow.yml", SENDER_TO_RECEIVER)
    flow.write("sender.py", SENDER)
    flow.write("receiver.py", RECORDER)
    proc = flow.start(*(["--secure"] if secure else []))
    try:
        wait_for(lambda: (flow.folder / "out").exists(), what="the run to start")
        extra = []
        if observer:  # the runner prints where a read-only tool finds its credentials
            line = next((x for x in iter(proc.stderr.readline, "") if "read-only" in x), "")
            extra = ["--credentials", line.rsplit("DORA_ZENOH_SECRET_FILE=", 1)[1].rstrip(")\n")]
        attack = subprocess.run([sys.executable, str(FORGER), flow.name, "sender", "data", flow.endpoint,
                                 "--done", "attacked", *extra],
                                cwd=flow.folder, capture_output=True, text=True, timeout=60)
        assert attack.returncode == 0, attack.stderr
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    events = json.loads((flow.folder / "result.json").read_text())
    data = [e["data"] for e in events if e["type"] == "INPUT"]
    if secure:
        assert proc.returncode == 0, err
        if observer:  # let in, reads the data, but every write it makes is dropped by Zenoh
            assert "linked peers: 0" not in attack.stdout and "received: 0" not in attack.stdout, attack.stdout
        else:
            assert "closed dataflow" in err and "DORA_ZENOH_SECRET_FILE" in err
            assert "linked peers: 0" in attack.stdout
        sent = int((flow.folder / "sent.txt").read_text())
        assert data == [str(i) for i in range(sent)]  # every real message, nothing forged
        assert [e["type"] for e in events if e["type"] != "INPUT"] == ["INPUT_CLOSED", "STOP"]
        assert not list(flow.folder.glob("out/*/credentials"))  # nothing secret left in the logs
    else:  # the same attack works on an open dataflow: the receiver's view is not the sender's
        sent = int((flow.folder / "sent.txt").read_text())
        assert "linked peers: 0" not in attack.stdout
        facts = [e["type"] for e in events if e["type"] != "INPUT"]
        assert data != [str(i) for i in range(sent)] or facts != ["INPUT_CLOSED", "STOP"], (facts, len(data), sent)


def test_coordinator_starts_a_closed_dataflow(coord, flow):
    flow.write("dataflow.yml", SENDER_TO_RECEIVER)
    flow.write("sender.py", "import os\nfrom dora import Node\nnode = Node()\n"
                            "open('closed.txt', 'w').write(str('DORA_ZENOH_SECRET_FILE' in os.environ))\n"
                            "for i in range(5):\n    node.send_output('data', str(i).encode())\n")
    flow.write("receiver.py", RECORDER)
    # `secure: true` in the YAML closes it as --secure does
    flow.write("dataflow.yml", "secure: true\n" + flow.yaml.read_text())
    res = coord("start", str(flow.yaml), "--name", flow.name, cwd=flow.folder)
    assert res.returncode == 0, res.stderr
    events = json.loads((flow.folder / "result.json").read_text())
    assert [e.get("data") for e in events if e["type"] == "INPUT"] == ["0", "1", "2", "3", "4"]
    assert coord.list(flow.name)["status"] == "succeeded"
    assert (flow.folder / "closed.txt").read_text() == "True"
    assert not list(flow.folder.glob("out/**/credentials"))



def env_of_another_process() -> dict[str, str]:
    """This environment without the variables `join` would set: a process that knows nothing."""
    return {k: v for k, v in os.environ.items() if k not in ("DORA_ZENOH_SECRET_FILE", "DORA_ZENOH_ENDPOINT")}


def joined(coord, name: str, env: dict[str, str]) -> dict[str, str]:
    """The variables `dora-zenoh join NAME` prints (its `export` lines)."""
    res = cli("join", name, "--endpoint", coord.endpoint, env=env)
    assert res.returncode == 0, res.stderr
    return dict(line.removeprefix("export ").split("=", 1) for line in res.stdout.splitlines())

def test_the_owners_tools_find_a_closed_dataflow_of_the_coordinator_by_name(coord, flow):
    """A closed dataflow on the coordinator lives on a network of its own: `topic echo -d NAME`,
    `topic pub -d NAME` (a member: its message reaches the node) and `record NAME` reach it
    with no variable set (the control socket gives them its endpoint and credentials), and
    `join NAME` prints them for anything else."""
    flow.write("dataflow.yml", """
        secure: true
        nodes:
          - id: sender
            path: sender.py
            outputs: [data]
          - id: listener
            path: listener.py
            inputs:
              data: sender/data
          - id: viewer
            path: dynamic
            inputs:
              data: sender/data
    """)
    flow.write("sender.py", SENDER)
    flow.write("viewer.py", """
        import sys
        from dora_zenoh import Node
        node = Node("viewer", dataflow=sys.argv[1], endpoint=sys.argv[2])
        for event in node:
            if event["type"] == "INPUT":
                open("viewed.txt", "w").write(event.raw.decode())
                break
    """)
    flow.write("listener.py", """
        from dora import Node
        for event in Node():
            if event["type"] == "INPUT" and not event.raw.decode().isdigit():  # not the sender's
                open("poked.txt", "w").write(event.raw.decode())
    """)
    res = coord("start", "--detach", str(flow.yaml), "--name", flow.name, cwd=flow.folder)
    assert res.returncode == 0, res.stderr
    env = env_of_another_process()
    try:
        lines = joined(coord, flow.name, env)
        assert lines["DORA_ZENOH_ENDPOINT"] != coord.endpoint  # its own network
        assert Path(lines["DORA_ZENOH_SECRET_FILE"]).name == "credentials"
        echo = cli("topic", "echo", "sender/data", "-d", flow.name, "--count", "3", "--timeout", "30s",
                   "--endpoint", coord.endpoint, env=env, timeout=60)
        assert echo.returncode == 0, echo.stderr
        assert echo.stdout.count("seq: ") == 3, echo.stdout
        # no name, and it is the only dataflow running: the tool joins it, and says so
        listed = cli("topic", "list", "--endpoint", coord.endpoint, env=env, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert f"showing closed dataflow '{flow.name}', the only one running" in listed.stderr, listed.stderr
        assert "sender/data" in listed.stdout, listed.stdout
        mcap = flow.folder / "closed.mcap"
        rec = cli("record", flow.name, "sender/data", "--duration", "2s", "-o", str(mcap),
                  "--endpoint", coord.endpoint, env=env, timeout=60)
        assert rec.returncode == 0, rec.stderr
        info = cli("bag", "info", str(mcap), "--json", env=env)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["messages"] > 0, info.stdout
        pub = cli("topic", "pub", "sender/data", "poke", "-d", flow.name, "--endpoint", coord.endpoint,
                  env=env, timeout=60)
        assert pub.returncode == 0, pub.stderr
        assert wait_for(lambda: (flow.folder / "poked.txt").exists(), 30, "the injected message")
        assert (flow.folder / "poked.txt").read_text() == "poke"
        # a dynamic node started by hand, with no variable set, joins the closed network too
        viewer = subprocess.run([sys.executable, "viewer.py", flow.name, coord.endpoint], cwd=flow.folder,
                                env=env, capture_output=True, text=True, timeout=60)
        assert viewer.returncode == 0, viewer.stderr
        assert (flow.folder / "viewed.txt").read_text().isdigit()
        # two closed dataflows: a tool given no name shows neither, and names both
        res = coord("start", "--detach", str(flow.yaml), "--name", flow.name + "-2", cwd=flow.folder)
        assert res.returncode == 0, res.stderr
        listed = cli("topic", "list", "--endpoint", coord.endpoint, env=env, timeout=60)
        assert f"not shown: closed dataflow(s) {flow.name}, {flow.name}-2" in listed.stderr, listed.stderr
        # ... but a topic written DATAFLOW/NODE/OUTPUT names its dataflow: the tool joins that one
        echo = cli("topic", "echo", f"{flow.name}-2/sender/data", "--count", "1", "--timeout", "30s",
                   "--endpoint", coord.endpoint, env=env, timeout=60)
        assert echo.returncode == 0, echo.stderr
        assert f"showing closed dataflow '{flow.name}-2', which the topic names" in echo.stderr, echo.stderr
        assert f"key: dora/{flow.name}-2/sender/data" in echo.stdout, echo.stdout
    finally:
        (flow.folder / "attacked").write_text("")  # the sender ends
    assert wait_for(lambda: coord.status(flow.name) != "running", 60, "the dataflow's end")


@pytest.mark.parametrize("how", ["default", "open"])
def test_the_coordinator_closes_a_dataflow_on_one_machine_by_default(coord, flow, how):
    """`start` without --secure closes a dataflow that runs on one machine: a foreign session
    without its credentials gets no link, on the coordinator's endpoint or on the run's own,
    and forges nothing. `start --open` (or `secure: false`) keeps it open: the same attack
    reaches it (so the test can fail)."""
    flow.write("dataflow.yml", SENDER_TO_RECEIVER)
    flow.write("sender.py", SENDER)
    flow.write("receiver.py", RECORDER)
    res = coord("start", "--detach", str(flow.yaml), "--name", flow.name, *(["--open"] if how == "open" else []),
                cwd=flow.folder)
    assert res.returncode == 0, res.stderr
    env = env_of_another_process()
    where = joined(coord, flow.name, env)
    attack = subprocess.run([sys.executable, str(FORGER), flow.name, "sender", "data", where["DORA_ZENOH_ENDPOINT"],
                             "--done", "attacked"],
                            cwd=flow.folder, capture_output=True, text=True, timeout=60, env=env)
    assert attack.returncode == 0, attack.stderr
    assert wait_for(lambda: coord.status(flow.name) != "running", 60, "the dataflow's end")
    events = json.loads((flow.folder / "result.json").read_text())
    data = [e["data"] for e in events if e["type"] == "INPUT"]
    sent = int((flow.folder / "sent.txt").read_text())
    row = coord.list(flow.name)
    if how == "default":
        assert row["closed"] is True and "DORA_ZENOH_SECRET_FILE" in where
        assert "linked peers: 0" in attack.stdout, attack.stdout
        assert data == [str(i) for i in range(sent)]  # every real message, nothing forged
        assert [e["type"] for e in events if e["type"] != "INPUT"] == ["INPUT_CLOSED", "STOP"]
        assert row["status"] == "succeeded"
    else:
        assert row["closed"] is False and "DORA_ZENOH_SECRET_FILE" not in where
        assert "linked peers: 0" not in attack.stdout, attack.stdout
        facts = [e["type"] for e in events if e["type"] != "INPUT"]
        assert data != [str(i) for i in range(sent)] or facts != ["INPUT_CLOSED", "STOP"], (facts, len(data), sent)
