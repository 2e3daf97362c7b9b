"""A link outage between machines: `queue_policy: block` inputs get what was sent meanwhile (needs root).

Three senders on machine a, one sink on machine b reading them with `queue_policy: block`. The
link goes down for 12 s (past Zenoh's 10 s lease: every session sees the other side go)
while they send at 20 Hz. `big` keeps 1000 messages for replay, `small` 20: after the link
returns, the sink has every message of `big` in order, and of `small` the messages before
the outage, the last ones its sender kept, and the ones after, with the gap counted and
logged. `end` ends during the outage, taking what it kept with it: once the link is back its
input closes, and what never arrived is counted and logged; as for `kill` (SIGKILL: no notice)
and `exit` (``os._exit``: no notice, no signal), whose counts come from their sent files. The
same outage with the reader an operator of a runtime node, too. The namespace harness is
test_machines.py's (cleaned up also on failure).
"""
from __future__ import annotations

import json
import re
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_machines import Machines, _ip, machines, wait_for  # noqa: F401 (machines: a fixture)

pytestmark = pytest.mark.timeout(240)

OUTAGE = 12.0  # past Zenoh's 10 s lease
SMALL = 20     # messages the `small` sender keeps


@pytest.fixture
def net(machines: Machines) -> Machines:  # noqa: F811 (the fixture imported above)
    """Machines a and b: test_machines.py's harness, removed after the test, also on failure."""
    return machines


def write_flow(folder: Path) -> Path:
    for name in ("big", "small", "end", "kill", "exit"):
        (folder / f"send_{name}.py").write_text(textwrap.dedent(f"""
            import os
            import signal
            from dora import Node
            node = Node()
            i = 0
            for event in node:
                if event["type"] == "INPUT":
                    i += 1
                    node.send_output("n", i.to_bytes(8, "little"))
                    with open("sent-{name}.txt", "a") as f:
                        f.write(f"{{i}}\\n")
                    if "{name}" == "end" and os.path.exists("end-now.txt"):
                        break  # ends during the outage (its notice and replay cache go with it)
                    if "{name}" == "kill" and os.path.exists("end-now.txt"):
                        os.kill(os.getpid(), signal.SIGKILL)  # dies during the outage: no notice at all
                    if "{name}" == "exit" and os.path.exists("end-now.txt"):
                        os._exit(0)  # ends during the outage without a notice, and with no signal
        """))
    (folder / "sink.py").write_text(textwrap.dedent("""
        from dora import Node
        node = Node()
        for event in node:
            if event["type"] == "INPUT":
                v = int.from_bytes(bytes(event["value"].to_numpy()), "little")
                with open(f"got-{event['id']}.txt", "a") as f:
                    f.write(f"{v}\\n")
            else:
                with open("events.txt", "a") as f:
                    f.write(f"{event['type']} {event.get('id')}\\n")
    """))
    kept = {"big": 1000, "small": SMALL, "end": 5, "kill": 5, "exit": 5}  # DORA_ZENOH_REPLAY_MESSAGES
    senders = "".join(f"""
          - id: send_{name}
            path: send_{name}.py
            deploy: {{machine: a}}
            env: {{DORA_ZENOH_REPLAY_MESSAGES: "{n}"}}
            inputs: {{tick: dora/timer/millis/50}}
            outputs: [n]""" for name, n in kept.items())
    inputs = "".join(f"""
              {name}: {{source: send_{name}/n, queue_policy: block}}""" for name in kept)
    yaml = folder / "dataflow.yml"
    yaml.write_text(textwrap.dedent(f"""
        nodes:{senders}
          - id: sink
            path: sink.py
            deploy: {{machine: b}}
            inputs:{inputs}
    """))
    # the daemons' logs and state are in this folder too, and change while it is shipped
    (folder / ".dora-zenoh-ignore").write_text("*.log\n*.txt\n/state/\n")
    return yaml


def kill_links(net: Machines) -> None:
    """Abort every TCP connection between the two machines, on both sides (``ss -K``)."""
    for m, other in (("a", "b"), ("b", "a")):
        out = subprocess.run(["ip", "netns", "exec", net.ns[m], "ss", "-K", "-tn", "dst", net.addr[other]],
                             capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            pytest.skip(f"needs `ss -K` (iproute2, a kernel with INET_DIAG_DESTROY): {out.stderr.strip()}")


def numbers(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().splitlines() if line.strip().isdigit()]


def ended_during_the_outage(net: Machines, name: str) -> int:
    """Input ``name`` of the sink closed, and the messages of ``send_<name>`` that never arrived
    were logged once, exactly; how many."""
    tmp = net.tmp
    events = tmp / "events.txt"
    wait_for(lambda: events.exists() and f"INPUT_CLOSED {name}" in events.read_text(), 60,
             f"input '{name}' to close")
    sent, got = len(numbers(tmp / f"sent-{name}.txt")), len(numbers(tmp / f"got-{name}.txt"))
    assert got < sent, (name, got, sent)  # (its replay cache kept 5: the outage did lose some)
    logs = net.cli("logs", "outage", "sink")
    assert logs.returncode == 0, logs.stderr
    found = re.findall(rf"input '{name}' lost (\d+) message\(s\) of send_{name}/n that never arrived", logs.stdout)
    assert found == [str(sent - got)], logs.stdout[-3000:]
    return sent - got


def through_an_outage(net: Machines, yaml: Path, name: str, at_the_cut: Callable[[], object] = lambda: None) -> None:
    """Start ``yaml`` on machines a and b; once both senders' data reaches b, take the link down
    for OUTAGE s (its TCP connections killed a third of the way in, then ``at_the_cut``); return
    once every message sent before the link came back, and some after, reached the sink."""
    tmp = net.tmp
    net.start_coordinator()
    net.start_daemon("a")
    net.start_daemon("b")
    out = net.cli("start", str(yaml), "--name", name, "--detach")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: min(len(numbers(tmp / "got-big.txt")), len(numbers(tmp / "got-small.txt"))) >= 5, 60,
             "data from both senders on b")
    _ip("-n", net.ns["a"], "link", "set", net.dev["a"], "down")
    try:
        # Zenoh kept its links through a 15 s outage here (what they had queued went through once the
        # link was back, nothing was lost) and had closed them after 25 s: kill them, as a longer
        # outage would, so that what the sender sends meanwhile really is lost on the way.
        time.sleep(OUTAGE / 3)
        kill_links(net)
        at_the_cut()
        time.sleep(OUTAGE * 2 / 3)
    finally:
        _ip("-n", net.ns["a"], "link", "set", net.dev["a"], "up")
    sent_at_up = {n: len(numbers(tmp / f"sent-{n}.txt")) for n in ("big", "small")}
    got_at_up = {n: len(numbers(tmp / f"got-{n}.txt")) for n in ("big", "small")}
    # The outage really cut the sink off (at 20 Hz for 12 s, well over SMALL messages each).
    assert all(sent_at_up[n] - got_at_up[n] > 3 * SMALL for n in sent_at_up), (sent_at_up, got_at_up)
    healed_at = time.monotonic()
    wait_for(lambda: all(max(numbers(tmp / f"got-{n}.txt"), default=0) >= sent_at_up[n] + 10 for n in sent_at_up),
             60, "data to resume after the link came back")
    print(f"caught up {time.monotonic() - healed_at:.1f} s after the link came back (bounded wait)")


def big_whole_small_counted(net: Machines, name: str, inputs: str = "") -> int:
    """``big`` got every message in order; ``small`` has a hole (its sender kept 20), as many
    as the sink's log says it lost, exactly (``inputs``: the prefix of its input ids, an
    operator's); how many."""
    big = numbers(net.tmp / "got-big.txt")
    assert big == list(range(1, len(big) + 1)), "big: not every message, in order"
    small = numbers(net.tmp / "got-small.txt")
    assert small[0] == 1 and small == sorted(set(small)), "small: out of order or duplicated"
    missing = sum(b - a - 1 for a, b in zip(small, small[1:], strict=False) if b != a + 1)
    assert missing, "small: no hole, although its sender kept only 20 of the messages the outage lost"
    logs = net.cli("logs", name, "sink")
    assert logs.returncode == 0, logs.stderr
    reported = sum(int(n) for n in re.findall(
        rf"input '{inputs}small' lost (\d+) message\(s\) of send_small/n that its sender no longer kept", logs.stdout))
    assert reported == missing, logs.stdout[-3000:]
    assert f"input '{inputs}big' lost" not in logs.stdout
    return missing


def test_block_inputs_recover_what_an_outage_lost_up_to_the_bound(net: Machines) -> None:
    tmp = net.tmp
    # send_end ends at the cut, while the link is down
    through_an_outage(net, write_flow(tmp), "outage", at_the_cut=lambda: (tmp / "end-now.txt").write_text(""))
    missing = big_whole_small_counted(net, "outage")

    # Senders that ended during the outage: each input closes once the link is back (their
    # supervisor's word reaches b), and what never arrived is counted and logged. `end` returned
    # (its count: its end-of-stream notice, through that supervisor); `kill` was SIGKILLed and
    # `exit` called os._exit(0), without a notice: their counts come from their sent files
    # (dora_zenoh.wire.tally), which their supervisor read and declared.
    lost = {name: ended_during_the_outage(net, name) for name in ("end", "kill", "exit")}

    info = net.cli("node", "info", "sink", "-d", "outage", "--json")
    assert info.returncode == 0, info.stderr
    inputs = json.loads(info.stdout)["inputs"]
    assert (inputs["small"]["dropped"], inputs["big"]["dropped"]) == (missing, 0), inputs
    assert all(inputs[name]["dropped"] == n for name, n in lost.items()), (inputs, lost)
    out = net.cli("stop", "outage")
    # (`stop` reports the dataflow failed: one of its nodes was killed by a signal)
    assert out.returncode == 0 or "'send_kill' on machine 'a' was killed by signal SIGKILL" in out.stdout + out.stderr, (
        out.stdout + out.stderr)


def test_an_operator_recovers_what_an_outage_lost_as_a_node_does(net: Machines) -> None:
    """The same outage with the reader an operator (a runtime node): its block inputs from
    another machine now read from FIFO channels, as a node's do (they were Zenoh callbacks, which
    count as lost what Zenoh's recovery gives up on while the sender's cache still holds it):
    every message of `big` in order, and of `small` the gap its small cache could not cover,
    counted and logged, under the operator's input ids."""
    tmp = net.tmp
    write_flow(tmp)  # the senders' scripts; the dataflow below keeps two of them
    (tmp / "op.py").write_text(textwrap.dedent("""
        class Operator:
            def on_event(self, event, send_output):
                if event["type"] == "INPUT":
                    v = int.from_bytes(bytes(event["value"].to_numpy()), "little")
                    with open(f"got-{event['id']}.txt", "a") as f:
                        f.write(f"{v}\\n")
    """))
    yaml = tmp / "operator.yml"
    yaml.write_text(textwrap.dedent("""
        nodes:
          - id: send_big
            path: send_big.py
            deploy: {machine: a}
            env: {DORA_ZENOH_REPLAY_MESSAGES: "1000"}
            inputs: {tick: dora/timer/millis/50}
            outputs: [n]
          - id: send_small
            path: send_small.py
            deploy: {machine: a}
            env: {DORA_ZENOH_REPLAY_MESSAGES: "20"}
            inputs: {tick: dora/timer/millis/50}
            outputs: [n]
          - id: sink
            deploy: {machine: b}
            operators:
              - id: op
                python: op.py
                inputs:
                  big: {source: send_big/n, queue_policy: block}
                  small: {source: send_small/n, queue_policy: block}
    """))
    through_an_outage(net, yaml, "outage-op")
    big_whole_small_counted(net, "outage-op", inputs="op/")
    net.cli("stop", "outage-op")
