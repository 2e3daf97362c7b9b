"""--cpu-latency-us: a real PM QoS request on /dev/cpu_dma_latency, held exactly while a dataflow runs.

The requests are small non-zero values, so that the machine's idle CPUs are not made
to poll while the suite runs. The limit in force is the smallest of every process's
requests, so one test makes every request that is read back, one after the other.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import Flow, wait_for

from dora_zenoh.tuning.cpulatency import DEVICE, CpuLatencyError, CpuLatencyRequest, current_limit

NEEDS_PM_QOS = pytest.mark.skipif(not os.access(DEVICE, os.W_OK), reason=f"needs write access to {DEVICE}")

PROBE = """
    import struct
    from dora import Node
    Node()
    with open("/dev/cpu_dma_latency", "rb") as f:
        limit = struct.unpack("=i", f.read(4))[0]
    with open("limit.txt", "a") as out:
        out.write(f"{limit}\\n")
"""


def write_probe_flow(flow: Flow) -> None:
    """One node that appends the latency limit in force while it runs to limit.txt."""
    flow.write("dataflow.yml", """
        nodes:
          - id: probe
            path: probe.py
    """)
    flow.write("probe.py", PROBE)


def limits_seen(flow: Flow) -> list[int]:
    return [int(line) for line in (flow.folder / "limit.txt").read_text().split()]


@NEEDS_PM_QOS
def test_run_start_and_restart_hold_the_request_while_the_dataflow_runs(coord, flow):
    before = current_limit()
    assert before is not None
    write_probe_flow(flow)
    res = flow.run("--cpu-latency-us", "7")
    assert res.returncode == 0, res.stderr
    assert limits_seen(flow) == [min(before, 7)]
    assert current_limit() == before  # withdrawn when the run ended

    res = flow.run(env={**os.environ, "DORA_ZENOH_CPU_LATENCY_US": "9"})
    assert res.returncode == 0, res.stderr
    assert limits_seen(flow) == [min(before, 7), min(before, 9)]
    assert current_limit() == before

    # Through the coordinator, which makes the request itself; a restart makes it again.
    res = coord("start", str(flow.yaml), "--name", flow.name, "--cpu-latency-us", "8")
    assert res.returncode == 0, res.stdout + res.stderr
    res = coord("restart", flow.name)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: coord.status(flow.name) == "succeeded", what="the restarted run to end")
    assert limits_seen(flow)[2:] == [min(before, 8)] * 2
    assert current_limit() == before


def test_a_request_that_cannot_be_made_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "cpu_dma_latency")
    with pytest.raises(CpuLatencyError, match="does not have; run without the option"):
        CpuLatencyRequest(5, device=missing)
    with pytest.raises(CpuLatencyError, match="must be 0 to 2147483647 microseconds, not -1"):
        CpuLatencyRequest(-1, device=missing)
    # the request is a signed 32-bit value: struct.pack's "'i' format requires ..." reached the user
    with pytest.raises(CpuLatencyError, match="must be 0 to 2147483647 microseconds, not 99999999999"):
        CpuLatencyRequest(99_999_999_999, device=missing)


@NEEDS_PM_QOS
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the CLI as a user without access")
def test_no_permission_fails_before_any_node_starts(endpoint):
    # The folder (not pytest's tmp_path, which only root may enter) must be usable by 'nobody'.
    folder = Path(tempfile.mkdtemp(prefix="dz-cpulat-"))
    try:
        folder.chmod(0o777)
        flow = Flow(folder, "cpu-latency-denied", endpoint)
        write_probe_flow(flow)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if subprocess.run([*as_nobody, sys.executable, "-c", "import dora_zenoh"], capture_output=True,
                          timeout=60, cwd=folder).returncode != 0:
            pytest.skip("user nobody cannot import dora_zenoh from this environment")
        res = subprocess.run([*as_nobody, sys.executable, "-m", "dora_zenoh", "run", str(flow.yaml),
                              "--endpoint", endpoint, "--cpu-latency-us", "7"],
                             capture_output=True, text=True, timeout=60, cwd=folder)
        assert res.returncode == 1
        assert f"--cpu-latency-us needs write access to {DEVICE}" in res.stderr
        assert "Traceback" not in res.stderr
        assert not (folder / "limit.txt").exists()  # the node never started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
