"""Published dora node packages from PyPI run unchanged under dora-zenoh, as under dora-rs.

``dora-openarm-selector`` (uses ``node_config()``, forwards values and metadata),
``dora-echo`` (forwards each input with its metadata, dora's timestamp included) and
``dora-openarm-dummy`` (``isinstance(value, pa.StructArray)``, its own int "timestamp") run in
one dataflow (parity/packages.yml.in) whose sink writes a line per message; the lines must
be the ones dora-rs 1.1.0 gives (EXPECTED, and, when dora-rs installs, a live run of it).
The packages are installed with ``pip --no-deps --target`` into a cache folder on first
use (their only dependencies, pyarrow and numpy, are ours); the test is skipped, saying
why, only when that install fails.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli
from test_dora_parity import VENV, ensure_dora_rs, install_lock

HERE = Path(__file__).resolve().parent / "parity"
PACKAGES = ("dora-echo==0.5.0", "dora-openarm-selector==0.1.0", "dora-openarm-dummy==1.0.0")
TARGET = Path(os.environ.get("DORA_NODE_PACKAGES") or
              Path.home() / ".cache" / "dora-zenoh-tests" / "dora-node-packages")

# What the sink writes under dora-rs 1.1.0 (checked live too when dora-rs installs).
EXPECTED = [
    "1 selected StringArray ['policy'] {} timestamp=datetime",
    "2 cmd DoubleArray [1.0] {'selected_source': 'policy', 'step': 1} timestamp=datetime",
    "3 selected StringArray ['vr'] {} timestamp=datetime",
    "4 cmd DoubleArray [2.0] {'selected_source': 'vr', 'step': 3} timestamp=datetime",
    "5 cmd DoubleArray [4.0] {'selected_source': 'vr', 'step': 5} timestamp=datetime",
    "6 data StructArray [{'x': 1, 'y': 'a'}] {'step': 6, 'tags': ['a', 'b']} timestamp=datetime",
    "7 status StringArray ['ready'] {} timestamp=datetime",
    "8 position FloatArray [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0] {} timestamp=int",
]


def ensure_packages() -> Path:
    with install_lock():
        return _install_packages()


def _install_packages() -> Path:
    marker = TARGET / ".installed"
    if marker.exists() and marker.read_text() == " ".join(PACKAGES):
        return TARGET
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target",
                        str(TARGET), *PACKAGES], check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"could not install {' '.join(PACKAGES)} from PyPI into {TARGET}: {exc} "
                    f"{str(getattr(exc, 'stderr', '') or '')[-500:]}")
    marker.write_text(" ".join(PACKAGES))
    return TARGET


def write_dataflow(folder: Path, python: str) -> tuple[Path, Path]:
    out = folder / "sink-lines.txt"
    text = (HERE / "packages.yml.in").read_text()
    yaml = folder / "dataflow.yml"
    yaml.write_text(text.replace("@HERE@", str(HERE)).replace("@PYTHON@", python).replace("@OUT@", str(out)))
    return yaml, out


def lines(out: Path, log: str) -> list[str]:
    assert out.exists(), f"the sink wrote nothing; output:\n{log[-3000:]}"
    return out.read_text().splitlines()


@pytest.mark.timeout(1200)
def test_published_nodes_run_unchanged(tmp_path: Path, flow_name: str, endpoint: str) -> None:
    target = ensure_packages()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}
    yaml, out = write_dataflow(tmp_path, sys.executable)
    res = cli("run", str(yaml), "--name", flow_name, "--endpoint", endpoint, cwd=tmp_path, env=env, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert lines(out, res.stdout + res.stderr) == EXPECTED


@pytest.mark.timeout(1200)
def test_published_nodes_under_dora_rs_give_the_expected_lines(tmp_path: Path) -> None:
    """Keeps EXPECTED honest: the same dataflow under dora-rs 1.1.0."""
    target = ensure_packages()
    dora = ensure_dora_rs()
    yaml, out = write_dataflow(tmp_path, str(VENV / "bin" / "python"))
    env = {**os.environ, "PYTHONPATH": str(target), "PATH": f"{dora.parent}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(VENV), "RUST_LOG": "error"}
    proc = subprocess.run([str(dora), "run", str(yaml), "--stop-after", "60s", "--log-level", "error"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert lines(out, proc.stdout + proc.stderr) == EXPECTED
