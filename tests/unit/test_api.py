"""The public API surface: what ``dora_zenoh`` exports, and the ``dora`` shim node scripts import."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dora_zenoh
from dora_zenoh import errors

SHIM = Path(dora_zenoh.__file__).parent / "_shim"


def _python(code: str, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DORA_ZENOH_NODE_CONFIG", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("name", dora_zenoh.__all__)
def test_every_exported_name_resolves(name):
    value = getattr(dora_zenoh, name)
    assert value is not None
    if name != "__version__":
        assert getattr(importlib.import_module(value.__module__), name) is value


def test_lazy_map_and_all_agree():
    assert set(dora_zenoh._LAZY) | {"__version__"} == set(dora_zenoh.__all__)
    assert sorted(dora_zenoh.__all__) == dora_zenoh.__all__


def test_from_import_in_a_fresh_process():
    res = _python(f"from dora_zenoh import {', '.join(dora_zenoh.__all__)}; print('ok')")
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        dora_zenoh.Nope  # noqa: B018


def test_every_error_is_exported_and_derives_from_the_base():
    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException)
               and v.__module__ == errors.__name__]
    assert {c.__name__ for c in classes} <= set(dora_zenoh.__all__)
    assert all(issubclass(c, dora_zenoh.DoraZenohError) for c in classes)
    assert set(errors.__all__) == {c.__name__ for c in classes}


@pytest.mark.parametrize(("module", "name"), [
    ("dora_zenoh.supervision.client", "ControlError"),
    ("dora_zenoh.supervision.coordinator", "CommandError"),
    ("dora_zenoh.operators.loader", "OperatorLoadError"),
    ("dora_zenoh.tuning.cpulatency", "CpuLatencyError"),
    ("dora_zenoh.supervision.client", "NotAuthorizedError"),
    ("dora_zenoh.security.control", "NotAuthorizedError"),
    ("dora_zenoh.security.control", "ControlDirError"),
    ("dora_zenoh.security.certs", "CertError"),
    ("dora_zenoh.wire.tls", "TlsSetupError"),
    ("dora_zenoh.wire.tls", "InsecureEndpointError"),
    ("dora_zenoh.wire.auth", "SecretError"),
])
def test_old_import_paths_of_errors_still_work(module, name):
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_node_start_error_is_still_a_runtime_error():
    assert issubclass(errors.NodeStartError, RuntimeError)


def test_dora_shim_exports_node_and_status():
    res = _python("import json, dora, dora_zenoh; print(json.dumps([dora.__all__, dora.Node is dora_zenoh.Node, "
                  "dora.DoraStatus is dora_zenoh.DoraStatus, dora.DoraStatus.STOP.value]))", str(SHIM))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [["Node", "DoraStatus"], True, True, 1]


def test_a_node_process_does_not_import_pydantic_or_click():
    """Start-up time: ``from dora import Node`` pulls in neither the YAML schema nor the CLI."""
    res = _python("import sys; from dora import Node; import dora_zenoh.node.node; "
                  "print(sorted(m for m in ('pydantic', 'click', 'yaml') if m in sys.modules))", str(SHIM))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_a_node_process_imports_asyncio_and_the_auth_module_only_when_used():
    """Start-up time (every node of a 100-node dataflow pays it): asyncio (~40 ms of CPU) only
    for ``recv_async``, the credentials module (secrets, hashlib, shutil) only in a closed run."""
    res = _python("import sys; from dora import Node; import dora_zenoh.node.node; "
                  "print(sorted(m for m in ('asyncio', 'uuid', 'secrets', 'dora_zenoh.wire.auth') "
                  "if m in sys.modules))", str(SHIM))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
