"""settings.py: the registry of environment variables, their parsing, and the docs table made from it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dora_zenoh import settings
from dora_zenoh.wire import keys, zconfig

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dora_zenoh"


def test_every_variable_named_in_the_package_is_registered():
    """A new ``DORA_ZENOH_*`` in the code without a registry entry fails here."""
    named = set()
    for path in PACKAGE.rglob("*.py"):
        named |= set(re.findall(r"\bDORA_ZENOH_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    registered = {s.name for s in settings.REGISTRY}
    assert named <= registered, f"not in dora_zenoh/settings.py: {sorted(named - registered)}"


def test_variables_are_read_only_through_the_registry():
    """Outside settings.py, no module spells a variable's name: they go through ``settings.X``
    (docstrings and messages may mention them)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "settings.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""(environ[^\n]*|envvar=|env\[)["']DORA_""", line) or re.search(
                    r"""^\s*\w+_ENV\s*=\s*["']""", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_registry_is_unique_and_documented():
    names = [s.name for s in settings.REGISTRY]
    assert len(names) == len(set(names)) >= 13
    for s in settings.REGISTRY:
        assert s.meaning.strip() and "\n" not in s.meaning
        assert settings.by_name(s.name) is s
    with pytest.raises(KeyError):
        settings.by_name("DORA_ZENOH_NOPE")


def test_defaults_agree_with_the_modules_that_use_them():
    assert settings.PREFIX.default == keys.DEFAULT_PREFIX
    assert zconfig.DEFAULT_ENDPOINT == settings.ENDPOINT.default
    assert zconfig.NODE_RUNTIME == settings.ZENOH_RUNTIME.node_default


def test_unset_and_empty_mean_the_default(monkeypatch):
    for s in settings.REGISTRY:
        monkeypatch.delenv(s.name, raising=False)
        assert s.get() == s.default
        monkeypatch.setenv(s.name, "")
        assert s.get() == s.default


@pytest.mark.parametrize(("setting", "raw", "value"), [
    (settings.SPIN_US, "250", 250),
    (settings.SPIN_US, " 7 ", 7),
    (settings.SPIN_US, "   ", 0),
    (settings.NODE_SLICE_US, "0", 0),
    (settings.EXPRESS, "1", True),
    (settings.EXPRESS, "yes", False),  # only "1" turns it on, as always
    (settings.HOT_RELOAD, "1", True),
    (settings.ENDPOINT, "tcp/127.0.0.1:9", "tcp/127.0.0.1:9"),
    (settings.CPU_LATENCY_US, "20", 20),
])
def test_values_parse(monkeypatch, setting, raw, value):
    monkeypatch.setenv(setting.name, raw)
    assert setting.get() == value


@pytest.mark.parametrize(("setting", "fix"), [
    (settings.NODE_SLICE_US, "set it to e.g. 300, or to 0 to keep the kernel's default slice"),
    (settings.SEND_YIELD_US, "set it to e.g. 200, or to 0 to never yield"),
    (settings.SPIN_US, "set it to e.g. 100, or to 0 to block at once"),
])
def test_malformed_values_name_the_variable_value_and_fix(monkeypatch, setting, fix):
    monkeypatch.setenv(setting.name, "fast")
    with pytest.raises(ValueError) as info:
        setting.get()
    assert str(info.value) == f"{setting.name}='fast' is not a whole number of microseconds: {fix}"


def test_runner_puts_node_defaults_in_a_node_environment_but_keeps_the_users():
    env = {settings.SPIN_US.name: "5"}
    zconfig.tune_node_env(env, blocking_input=False)
    assert env[settings.SPIN_US.name] == "5"
    assert env[settings.NODE_SLICE_US.name] == settings.NODE_SLICE_US.node_default
    assert env[settings.SEND_YIELD_US.name] == settings.SEND_YIELD_US.node_default
    assert env[settings.ZENOH_RUNTIME.name] == zconfig.NODE_RUNTIME
    blocking: dict[str, str] = {}
    zconfig.tune_node_env(blocking, blocking_input=True)
    assert blocking[settings.ZENOH_RUNTIME.name] == zconfig.BLOCK_NODE_RUNTIME
    replayed: dict[str, str] = {}  # Zenoh's own, one receive worker: see tests/integration/test_replay_runtime.py
    zconfig.tune_node_env(replayed, blocking_input=False, replayed_output=True)
    assert replayed[settings.ZENOH_RUNTIME.name] == zconfig.REPLAY_NODE_RUNTIME
    assert replayed[settings.GLIBC_TUNABLES.name] == zconfig.REPLAY_TUNABLES  # huge pages for its cache
    assert settings.GLIBC_TUNABLES.name not in env and settings.GLIBC_TUNABLES.name not in blocking
    own = {settings.GLIBC_TUNABLES.name: "glibc.malloc.arena_max=2"}
    zconfig.tune_node_env(own, blocking_input=False, replayed_output=True)
    assert own[settings.GLIBC_TUNABLES.name] == "glibc.malloc.arena_max=2"


def test_docs_table_matches_the_registry():
    page = (ROOT / "docs" / "reference" / "environment.md").read_text(encoding="utf-8")
    assert page == settings.markdown_page(), (
        "docs/reference/environment.md is out of date: run "
        "`python -m dora_zenoh.settings --markdown > docs/reference/environment.md`")
    for s in settings.REGISTRY:
        assert f"| `{s.name}` |" in page


def test_markdown_command():
    res = subprocess.run([sys.executable, "-m", "dora_zenoh.settings", "--markdown"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == settings.markdown_page()
    bad = subprocess.run([sys.executable, "-m", "dora_zenoh.settings"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_log_limits_read_sizes_and_counts(monkeypatch):
    """The log rotation variables (``run --log-max-size/--log-max-files`` defaults) take what the
    CLI takes; a malformed one names the variable and the fix."""
    monkeypatch.setenv("DORA_ZENOH_LOG_MAX_BYTES", "4MiB")
    monkeypatch.setenv("DORA_ZENOH_LOG_BACKUPS", "5")
    assert settings.LOG_MAX_BYTES.get() == 4 << 20 and settings.LOG_BACKUPS.get() == 5
    monkeypatch.setenv("DORA_ZENOH_LOG_MAX_BYTES", "4M")
    with pytest.raises(ValueError, match=r"DORA_ZENOH_LOG_MAX_BYTES='4M' is not a size.*16MiB"):
        settings.LOG_MAX_BYTES.get()
    monkeypatch.setenv("DORA_ZENOH_LOG_BACKUPS", "-1")
    with pytest.raises(ValueError, match="DORA_ZENOH_LOG_BACKUPS='-1' is negative"):
        settings.LOG_BACKUPS.get()


def test_get_or_default_warns_with_the_fix_and_goes_on(monkeypatch, capsys):
    """Tuning values must not stop a node or a run: a malformed one is named, with its fix and
    what happens instead, and the default is used; a good one is used as given."""
    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", "lots")
    assert settings.REPLAY_MESSAGES.get_or_default() == 256
    err = capsys.readouterr().err
    assert "warning: DORA_ZENOH_REPLAY_MESSAGES='lots' is not" in err and "such as 256" in err
    assert err.rstrip().endswith("; using 256")
    monkeypatch.setenv("DORA_ZENOH_SHM", "maybe")
    assert settings.SHM.get_or_default("shared memory stays on") is True
    assert capsys.readouterr().err.rstrip().endswith("; shared memory stays on")
    monkeypatch.setenv("DORA_ZENOH_REPLAY_MESSAGES", "12")
    assert settings.REPLAY_MESSAGES.get_or_default() == 12
    assert capsys.readouterr().err == ""


def test_seconds_past_what_a_thread_can_wait_are_refused(monkeypatch):
    monkeypatch.setenv(settings.EXIT_TIMEOUT.name, "1e12")
    with pytest.raises(ValueError) as info:
        settings.EXIT_TIMEOUT.get()
    assert "DORA_ZENOH_EXIT_TIMEOUT='1e12' is more than 1000000000 seconds" in str(info.value)
    monkeypatch.setenv(settings.EXIT_TIMEOUT.name, "1e9")
    assert settings.EXIT_TIMEOUT.get() == 1e9
