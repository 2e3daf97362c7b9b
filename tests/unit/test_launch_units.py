"""The systemd units in launch/ say what dora-zenoh understands.

A unit is copied onto a robot and edited, not run by our tests (no systemd here): a variable
dora-zenoh does not read, a value it refuses or an option its CLI lacks would only show on
the robot, as a setting silently ignored or a service that fails to start. Each unit is checked
against the settings registry and the CLI's own option list, and by ``systemd-analyze verify``
(with its paths pointed at this checkout) where systemd's tools are installed.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dora_zenoh import settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "launch").glob("*.service"))
ENV = re.compile(r"^#?\s*Environment=(DORA_ZENOH_[A-Z0-9_]+)=(\S*)", re.M)  # commented-out ones too
EXEC = re.compile(r"^#?\s*ExecStart(?:Post)?=(.*)$", re.M)
SHELL_ENDS = {";", "&&", "||", "|", "do", "done"}  # where one command of a shell line ends


def test_there_are_units() -> None:
    assert {u.name for u in UNITS} >= {"dora-zenoh-coordinator.service", "dora-zenoh-daemon.service"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_every_variable_a_unit_sets_is_read_and_its_value_accepted(unit: Path) -> None:
    for name, value in ENV.findall(unit.read_text()):
        setting = settings.by_name(name)  # KeyError: dora-zenoh reads no such variable
        if value:
            setting.parse(value)  # ValueError: the value a user would copy is refused


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_every_option_a_unit_passes_is_one_the_cli_has(unit: Path) -> None:
    commands = [shlex.split(line) for line in EXEC.findall(unit.read_text()) if "dora-zenoh " in line]
    assert commands, unit.name
    for argv in commands:
        if argv[0].startswith("/bin/sh"):  # ExecStartPost's shell loop: its dora-zenoh commands
            argv = shlex.split(argv[-1].replace(";", " ; "))
        for i, word in enumerate(argv):
            if not (word == "dora-zenoh" or word.endswith("/bin/dora-zenoh")) or i + 1 == len(argv):
                continue
            verb = argv[i + 1]
            helped = subprocess.run([sys.executable, "-m", "dora_zenoh", verb, "--help"], capture_output=True,
                                    text=True, timeout=60)
            assert helped.returncode == 0, (unit.name, verb, helped.stderr)
            args = argv[i + 2:]
            ends = [k for k, w in enumerate(args) if w in SHELL_ENDS or w.startswith((">", "2>"))]
            options = {w.split("=")[0] for w in args[:ends[0] if ends else None] if w.startswith("--")}
            missing = [o for o in options if not re.search(rf"(^|[\s,]){re.escape(o)}\b", helped.stdout)]
            assert not missing, f"{unit.name}: `dora-zenoh {verb}` has no {', '.join(missing)}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_accepts_the_unit(unit: Path, tmp_path: Path) -> None:
    cli = shutil.which("dora-zenoh", path=str(Path(sys.executable).parent))
    assert cli, "the dora-zenoh CLI beside this Python"
    robot = tmp_path / "robot"
    (robot / ".venv" / "bin").mkdir(parents=True)
    (robot / ".venv" / "bin" / "dora-zenoh").symlink_to(cli)
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/robot", str(robot)))
    out = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), out.stdout + out.stderr
