"""The descriptor package's shape: what a node process pays to import it, and which way its imports point."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dora_zenoh.descriptor

PACKAGE = Path(dora_zenoh.descriptor.__file__).parent


def test_timers_and_model_do_not_import_pydantic() -> None:
    """Node processes import descriptor.timers and .model at start-up: no pydantic (nor yaml) for them."""
    code = (
        "import sys, dora_zenoh.descriptor.timers, dora_zenoh.descriptor.model, dora_zenoh.descriptor.cpus; "
        "print(sorted(m for m in ('pydantic', 'pydantic_core', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_public_names_load_lazily() -> None:
    """The public API is reachable from the package; only the loader pulls pydantic in."""
    code = (
        "import sys; from dora_zenoh.descriptor import Descriptor, DescriptorError, Problem; "
        "a = 'pydantic' in sys.modules; from dora_zenoh.descriptor import load_descriptor; "
        "print(a, 'pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
    for name in dora_zenoh.descriptor.__all__:
        assert getattr(dora_zenoh.descriptor, name) is not None


def test_descriptor_error_is_the_one_in_errors() -> None:
    from dora_zenoh import errors

    assert dora_zenoh.descriptor.DescriptorError is errors.DescriptorError
    assert issubclass(errors.DescriptorError, errors.DoraZenohError)


def test_descriptor_imports_only_downward() -> None:
    """The descriptor is the lowest layer above dora_zenoh.errors: it imports no other part of the package."""
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                ok = name in ("dora_zenoh.errors",) or name.startswith("dora_zenoh.descriptor")
                if name.startswith("dora_zenoh") and not ok:
                    upward.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {name}")
    assert upward == []
