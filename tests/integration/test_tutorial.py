"""The tutorial's dataflows (examples/tutorial/, shown in docs/tutorial/) run and print what the docs say."""
from __future__ import annotations

import shutil
from pathlib import Path

from conftest import ROOT, cli


def run_tutorial(yml: str, tmp_path: Path, endpoint: str, flow_name: str) -> str:
    folder = tmp_path / "tutorial"
    shutil.copytree(ROOT / "examples" / "tutorial", folder)  # its logs (out/) stay out of the tree
    res = cli("run", str(folder / yml), "--name", flow_name, "--endpoint", endpoint)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_first_node(tmp_path, endpoint, flow_name):
    out = run_tutorial("dataflow.yml", tmp_path, endpoint, flow_name)
    readings = [ln for ln in out.splitlines() if ln.startswith("[monitor] reading ")]
    assert [ln.split()[2].rstrip(":") for ln in readings] == [str(i) for i in range(10)]
    assert "[monitor] reading 0: 21.0 °C" in out
    assert "[monitor] reading 3: 24.0 °C  <- too warm" in out
    assert "[monitor] input temperature closed" in out
    assert "[monitor] monitor: 10 readings" in out


def test_first_operator(tmp_path, endpoint, flow_name):
    out = run_tutorial("operator.yml", tmp_path, endpoint, flow_name)
    assert "[monitor] reading 0: 69.8 °F" in out
    assert "[monitor] reading 3: 75.2 °F  <- too warm" in out
    assert "[converter] converted 10 readings" in out
    assert "[monitor] monitor: 10 readings" in out
