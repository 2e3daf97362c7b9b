"""Import rules of supervision/ and cli/ that a reader relies on, checked on the source (ast)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dora_zenoh

PACKAGE = Path(dora_zenoh.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_coordinator_does_not_import_its_client():
    assert not {m for m in imported_modules(PACKAGE / "supervision" / "coordinator.py")
                if m.startswith("dora_zenoh.supervision.client")}


@pytest.mark.parametrize("module", ["restart.py", "results.py", "paths.py"])
def test_pure_supervision_modules_need_no_zenoh_nor_processes(module):
    heavy = {"zenoh", "psutil", "subprocess", "threading"}
    assert not imported_modules(PACKAGE / "supervision" / module) & heavy


def test_units_is_a_base_module():
    assert {m for m in imported_modules(PACKAGE / "units.py") if m.startswith("dora_zenoh")} <= {
        "dora_zenoh.errors", "dora_zenoh.errors.UnitError"}


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_cli_commands_end_through_click_not_sys_exit(path):
    calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "exit"
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "sys"]
    assert not calls, f"{path.name}:{calls[0].lineno}: raise CliError or click.exceptions.Exit instead"
