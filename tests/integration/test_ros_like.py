"""ROS-like nodes (``Node("x", inputs=..., outputs=...)``, no YAML) started as real processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
    import json, sys
    from dora_zenoh import Node
    node = Node("ticker", inputs={"t": sys.argv[1]}, dataflow=sys.argv[2])
    ticks = []
    while len(ticks) < 3:
        event = node.next(timeout=10)
        if event is None:
            break
        ticks.append(event["type"])
    node.close()
    print(json.dumps(ticks))
"""


def _ros_like(tmp_path, endpoint: str, source: str, name: str) -> subprocess.CompletedProcess:
    script = tmp_path / "ticker.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if k != "DORA_ZENOH_NODE_CONFIG"}
    env["DORA_ZENOH_ENDPOINT"] = endpoint
    return subprocess.run([sys.executable, str(script), source, name], capture_output=True, text=True,
                          timeout=30, env=env, cwd=tmp_path)


@pytest.mark.parametrize(("source", "problem", "fix"), [
    ("dora/timer/millis/0", "timer period must be positive, not 0", "e.g. dora/timer/millis/100"),  # was KeyError: 'key'
    ("dora/timer/millis/-5", "timer period must be positive, not -5", "e.g. dora/timer/millis/100"),  # spun a CPU
    ("dora/timer/hz/0", "timer frequency must be positive, not 0", "e.g. dora/timer/hz/30"),
    ("dora/timer/milis/5", "unknown timer unit 'milis'", "did you mean 'millis'?"),
])
def test_a_bad_timer_is_a_clear_error_naming_node_input_and_fix(tmp_path, endpoint, flow_name, source, problem, fix):
    res = _ros_like(tmp_path, endpoint, source, flow_name)
    assert res.returncode != 0
    assert res.stdout == ""  # not a single tick
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("dora_zenoh.errors.NodeConfigError: input 't' of node 'ticker': "), res.stderr
    assert problem in last and fix in last
    assert "KeyError" not in res.stderr


def test_a_good_timer_ticks(tmp_path, endpoint, flow_name):
    res = _ros_like(tmp_path, endpoint, "dora/timer/millis/20", flow_name)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == ["INPUT"] * 3
