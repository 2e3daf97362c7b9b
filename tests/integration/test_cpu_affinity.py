"""`cpu_affinity:` in the YAML: its forms, its errors, and nodes that really run on those CPUs.

The run test reads the mask of every thread of each node process (Zenoh's threads
included) from the node itself, after `Node()` has opened its session.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Flow

from dora_zenoh.descriptor import check_file, load_descriptor
from dora_zenoh.descriptor.cpus import format_cpu_list, parse_cpu_list
from dora_zenoh.descriptor.host import usable_cpus

ALLOWED = sorted(os.sched_getaffinity(0))


@pytest.mark.parametrize("value, cpus", [
    (2, [2]), ("0", [0]), ("0-3,6", [0, 1, 2, 3, 6]), (" 1 , 0 ", [0, 1]), ([3, 1, 3], [1, 3]), ("4-4", [4]),
])
def test_cpu_list_forms(value: object, cpus: list[int]) -> None:
    assert parse_cpu_list(value) == cpus  # type: ignore[arg-type]


@pytest.mark.parametrize("value, message", [
    ("3-1", "has a range that runs backwards ('3-1'); write 1-3"),
    ("", "should be a CPU list such as 2"),
    ("0,,1", "should be a CPU list such as 2"),
    ("a-b", "should be a CPU list such as 2"),
    ([], "is empty; name at least one CPU"),
    (-1, "has a negative CPU number (-1)"),
    ([0, True], "should list CPU numbers"),
    (True, "should be a CPU number, a list"),
    (1.5, "should be a CPU number, a list"),
])
def test_bad_cpu_lists(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_cpu_list(value)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_cpu_list_is_written_like_taskset() -> None:
    assert format_cpu_list([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert format_cpu_list([3]) == "3"
    assert parse_cpu_list(format_cpu_list([0, 2, 3, 4, 9])) == [0, 2, 3, 4, 9]


def test_descriptor_problems_name_line_node_and_fix(tmp_path: Path) -> None:
    (tmp_path / "n.py").write_text("# dummy\n")
    (tmp_path / "op.py").write_text("# dummy\n")
    beyond = max(ALLOWED) + 1
    (tmp_path / "dataflow.yml").write_text(f"""nodes:
  - id: ok
    path: n.py
    cpu_affinity: "{ALLOWED[0]}"
  - id: outside
    path: n.py
    cpu_affinity: [{ALLOWED[0]}, {beyond}]
  - id: backwards
    path: n.py
    cpu_affinity: "3-1"
  - id: dyn
    path: dynamic
    cpu_affinity: 0
  - id: ops
    operators:
      - id: op
        python: op.py
    cpu_affinity: {beyond}-{beyond + 2}
""")
    found = [(p.line, p.node, p.message, p.hint) for p in check_file(tmp_path / "dataflow.yml")]
    usable = f"CPUs {format_cpu_list(usable_cpus())} are usable (online, and in this process's cgroup); pick from those"
    assert found == [
        (7, "outside", f"cpu_affinity names CPU {beyond}, which a node cannot run on here", usable),
        (10, "backwards", "cpu_affinity has a range that runs backwards ('3-1'); write 1-3",
         'e.g. cpu_affinity: [0, 1] or cpu_affinity: "0-3"'),
        (13, "dyn", "cpu_affinity has no effect on a dynamic node",
         "you start it, so pin it yourself: taskset -c 0 <command>"),
        (18, "ops", f"cpu_affinity names CPUs {beyond}-{beyond + 2}, which a node cannot run on here", usable),
    ]
    assert set(ALLOWED) <= set(usable_cpus())


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs")
def test_a_cpu_outside_the_runners_own_mask_is_fine(tmp_path: Path) -> None:
    """Like a unit with CPUAffinity=0 (or isolcpus) whose dataflow pins a node to an isolated core:
    the runner's mask does not limit its children's, so the check must not either."""
    (tmp_path / "n.py").write_text("# dummy\n")
    (tmp_path / "dataflow.yml").write_text(f"nodes:\n  - id: a\n    path: n.py\n    cpu_affinity: {ALLOWED[-1]}\n")
    code = (f"import os; os.sched_setaffinity(0, {{{ALLOWED[0]}}}); from dora_zenoh.descriptor import check_file; "
            f"print(check_file({str(tmp_path / 'dataflow.yml')!r}), sorted(os.sched_getaffinity(0)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", f"[{ALLOWED[0]}]"]  # no problem, and its own mask is as it was


def test_resolved_node_carries_its_cpus(tmp_path: Path) -> None:
    (tmp_path / "n.py").write_text("# dummy\n")
    (tmp_path / "dataflow.yml").write_text(f"nodes:\n  - id: a\n    path: n.py\n    cpu_affinity: {ALLOWED[-1]}\n"
                                           "  - id: b\n    path: n.py\n")
    desc = load_descriptor(tmp_path / "dataflow.yml")
    assert desc.node("a").cpu_affinity == [ALLOWED[-1]]
    assert desc.node("b").cpu_affinity is None
    assert json.loads(json.dumps(desc.to_dict()))["nodes"][0]["cpu_affinity"] == [ALLOWED[-1]]


PROBE = """
    import json, os, sys
    from dora import Node
    node = Node()
    masks = {int(t): sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}
    name = os.environ["DORA_NODE_ID"]
    with open(f"{name}.masks", "a") as f:
        f.write(json.dumps({"threads": len(masks), "masks": sorted(set(map(tuple, masks.values())))}) + "\\n")
    if name == "flaky" and not os.path.exists("flaky.failed"):
        open("flaky.failed", "w").close()
        sys.exit(3)  # first run fails, so the restart must be pinned as well
"""

OPERATOR = """
    import json, os
    from dora import DoraStatus


    class Operator:
        def on_event(self, event, send_output):  # by now the runtime's session is open
            masks = {int(t): sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}
            with open("ops.masks", "a") as f:
                f.write(json.dumps({"threads": len(masks), "masks": sorted(set(map(tuple, masks.values())))}) + "\\n")
            return DoraStatus.STOP
"""


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs to tell a pinned node from a free one")
def test_nodes_run_on_their_cpus_from_their_first_thread(flow: Flow) -> None:
    pinned, other = ALLOWED[-1], ALLOWED[0]
    flow.write("probe.py", PROBE)
    flow.write("op.py", OPERATOR)
    flow.write("dataflow.yml", f"""
        nodes:
          - id: pinned
            path: probe.py
            cpu_affinity: [{pinned}]
          - id: free
            path: probe.py
          - id: flaky
            path: probe.py
            cpu_affinity: "{other}"
            restart_policy: on-failure
            restart_delay: 0
          - id: ops
            operators:
              - id: op
                python: op.py
                inputs:
                  tick: dora/timer/millis/10
            cpu_affinity: {pinned}
    """)
    done = flow.run("--stop-after", "20s")
    assert done.returncode == 0, done.stdout + done.stderr

    def reports(name: str) -> list[dict]:
        return [json.loads(line) for line in (flow.folder / f"{name}.masks").read_text().splitlines()]

    for name, cpus in (("pinned", [pinned]), ("ops", [pinned]), ("free", ALLOWED)):
        (report,) = reports(name)
        assert report["threads"] >= 2, report  # Zenoh's own threads are there, and pinned too
        assert report["masks"] == [cpus], (name, report)
    flaky = reports("flaky")
    assert len(flaky) == 2, flaky  # the failed first run and its restart
    assert all(r["masks"] == [[other]] for r in flaky), flaky
