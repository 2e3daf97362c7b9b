"""Differential test: the same probe dataflow under dora-rs 1.1.0 and under dora-zenoh.

``parity/probe.py`` exercises every corner of dora's Python node API (each Arrow type,
each kind of metadata, timeouts, STOP, timers, the descriptor, node_config, async,
undeclared outputs, ...) and ``parity/probe_operator.py`` the operator API (values,
metadata, undeclared outputs); each writes one canonical line per probe. Both runtimes run it;
every line must match, except the differences listed in KEPT, each with its reason.

dora-rs is installed on first use into a venv of its own (``$DORA_RS_VENV``, default
``~/.cache/dora-zenoh-tests/dora-rs-1.1.0``), as ../shared/bench/compare.py does; the
test is skipped, saying why, only when that install fails (no network, no wheel).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli

HERE = Path(__file__).resolve().parent / "parity"
DORA_RS = ("dora-rs-cli==1.1.0", "dora-rs==1.1.0")
VENV = Path(os.environ.get("DORA_RS_VENV") or Path.home() / ".cache" / "dora-zenoh-tests" / "dora-rs-1.1.0")

# line -> (dora-rs's value, ours, why we keep the difference)
KEPT: dict[str, tuple[str, str, str]] = {
    "probe.meta.dict": ("str \"{'a': 1}\"", "dict{a: int 1}",
                        "metadata travels as JSON, so a dict arrives as the dict it was (dora-rs: its str())"),
    "probe.meta.none": ("str 'None'", "NoneType None",
                        "metadata travels as JSON, so None arrives as None (dora-rs: the string 'None')"),
    "probe.meta.naive": ("datetime aware utcoffset=0:00:00 2024-01-02T03:04:05.654320+00:00",
                         "datetime aware utcoffset=0:00:00 2024-01-02T03:04:05.654321+00:00",
                         "both read a naive datetime as local time and deliver it as UTC; dora-rs loses a "
                         "microsecond on the way (a float), dora-zenoh keeps all six digits"),
    "src.send.numpy": ("raises RuntimeError", "ok",
                       "dora-zenoh also sends a numpy array (as the Arrow array of its values): a superset"),
    "src.send.pylist": ("raises RuntimeError", "ok",
                        "dora-zenoh also sends a Python list (as pa.array(list)): a superset"),
    "src.send.str": ("raises RuntimeError", "ok",
                     "dora-zenoh also sends a str (UTF-8 bytes, text/plain): a superset"),
}


@contextlib.contextmanager
def install_lock() -> Iterator[None]:
    """One install at a time into the cache folder (xdist workers may ask at once)."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_dora_rs() -> Path:
    """The dora CLI of a venv with dora-rs 1.1.0 (installed on first use), or skip saying why."""
    with install_lock():
        return _install_dora_rs()


def _install_dora_rs() -> Path:
    dora = VENV / "bin" / "dora"
    marker = VENV / ".installed"
    if dora.exists() and marker.exists():
        return dora
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *DORA_RS, "pyarrow", "numpy"],
                       check=True, capture_output=True, text=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        pytest.skip(f"could not install dora-rs 1.1.0 into {VENV} (pip install {' '.join(DORA_RS)}): "
                    f"{exc} {str(detail)[-500:]}")
    marker.write_text(" ".join(DORA_RS))
    return dora


def write_dataflow(folder: Path) -> tuple[Path, Path]:
    out = folder / "probe-lines.txt"
    text = (HERE / "dataflow.yml.in").read_text()
    yaml = folder / "dataflow.yml"
    yaml.write_text(text.replace("@PROBE@", str(HERE / "probe.py")).replace("@OUT@", str(out))
                    .replace("@OPERATOR@", str(HERE / "probe_operator.py")))
    return yaml, out


def read_lines(path: Path, runtime: str, log: str) -> dict[str, str]:
    assert path.exists(), f"{runtime} wrote no probe lines; its output:\n{log[-3000:]}"
    lines: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        name, _, value = raw.partition(": ")
        assert name not in lines, f"{runtime}: probe {name} reported twice"
        lines[name] = value
    return lines


def run_dora_rs(folder: Path) -> dict[str, str]:
    dora = ensure_dora_rs()
    yaml, out = write_dataflow(folder)
    env = dict(os.environ)
    # dora-rs starts `python` from PATH for a .py node: the venv's, which has its `dora` module.
    env.update(PATH=f"{dora.parent}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(VENV), RUST_LOG="error")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(dora), "run", str(yaml), "--stop-after", "60s", "--log-level", "error"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=180)
    return read_lines(out, "dora-rs", proc.stdout + proc.stderr)


def run_dora_zenoh(folder: Path, name: str, endpoint: str) -> dict[str, str]:
    yaml, out = write_dataflow(folder)
    proc = cli("run", str(yaml), "--name", name, "--endpoint", endpoint, cwd=folder, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return read_lines(out, "dora-zenoh", proc.stdout + proc.stderr)


@pytest.mark.timeout(1200)
def test_probe_lines_match_dora_rs(tmp_path: Path, flow_name: str, endpoint: str) -> None:
    (tmp_path / "rs").mkdir()
    (tmp_path / "zenoh").mkdir()
    theirs = run_dora_rs(tmp_path / "rs")
    ours = run_dora_zenoh(tmp_path / "zenoh", flow_name, endpoint)
    problems = []
    for name in sorted(set(theirs) | set(ours)):
        a, b = theirs.get(name, "<missing>"), ours.get(name, "<missing>")
        if a == b:
            continue
        kept = KEPT.get(name)
        if kept is not None and (a, b) == kept[:2]:
            continue
        problems.append(f"{name}:\n    dora-rs:    {a}\n    dora-zenoh: {b}")
    assert not problems, "differences from dora-rs 1.1.0 (fix them, or list them in KEPT with the reason):\n" + \
        "\n".join(problems)
    # Every kept difference still exists: one that went away must leave KEPT.
    for name, (a, b, _) in KEPT.items():
        assert (theirs.get(name), ours.get(name)) == (a, b), f"{name}: no longer differs as KEPT says"
    assert len(ours) > 80  # the probe ran to its end in both
