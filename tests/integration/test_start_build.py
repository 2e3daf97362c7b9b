"""``start --build``: the builds of the coordinator's own nodes run before anything starts."""
from __future__ import annotations

import textwrap


def test_start_build_runs_builds_first_and_a_failure_starts_nothing(coord, flow):
    flow.write("node.py", "from dora import Node\nfor event in Node():\n    pass\n")
    flow.write("dataflow.yml", textwrap.dedent("""
        nodes:
          - id: worker
            path: node.py
            build: echo compiling worker; echo no-such-compiler >&2; exit 4
            inputs: {tick: dora/timer/millis/100}
    """))
    out = coord("start", str(flow.yaml), "--name", flow.name, "--detach", "--build")
    assert out.returncode != 0
    assert "the build of 'worker' failed (exit code 4)" in out.stderr, out.stderr
    assert "[worker] no-such-compiler" in out.stderr and "Traceback" not in out.stderr
    assert flow.name not in coord("list", "--json").stdout  # nothing was started

    flow.write("dataflow.yml", flow.yaml.read_text().replace(
        "echo no-such-compiler >&2; exit 4", "echo ok > built.txt"))
    out = coord("start", str(flow.yaml), "--name", flow.name, "--detach")  # no --build: no build
    assert out.returncode == 0, out.stderr
    assert not (flow.folder / "built.txt").exists()
    assert coord("stop", flow.name).returncode == 0
    out = coord("start", str(flow.yaml), "--name", flow.name + "-b", "--detach", "--build")
    assert out.returncode == 0, out.stderr
    assert (flow.folder / "built.txt").read_text() == "ok\n"
    assert coord("stop", flow.name + "-b").returncode == 0
