"""``DORA_ZENOH_SHM=0`` turns Zenoh's shared memory off in the sessions a process opens (an
idle node then saves Zenoh's shared-memory housekeeping); by default it stays on."""
from __future__ import annotations

import json

import pytest

from dora_zenoh.wire import zconfig


def _shm_enabled() -> bool:
    conf = zconfig.peer_config(["tcp/127.0.0.1:7"], ["tcp/127.0.0.1:0"], autoconnect=False)
    return json.loads(conf.get_json("transport/shared_memory/enabled"))


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("1", True), ("0", False)])
def test_shared_memory_follows_the_setting(monkeypatch, value, enabled):
    monkeypatch.delenv("DORA_ZENOH_ZENOH_CONFIG", raising=False)
    if value is None:
        monkeypatch.delenv("DORA_ZENOH_SHM", raising=False)
    else:
        monkeypatch.setenv("DORA_ZENOH_SHM", value)
    assert _shm_enabled() is enabled


def test_a_malformed_value_is_named_and_shared_memory_stays_on(monkeypatch, capsys):
    monkeypatch.delenv("DORA_ZENOH_ZENOH_CONFIG", raising=False)
    monkeypatch.setenv("DORA_ZENOH_SHM", "maybe")
    assert _shm_enabled() is True
    err = capsys.readouterr().err
    assert "DORA_ZENOH_SHM='maybe' is neither 0 nor 1: set it to 0 (off) or 1 (on); shared memory stays on" in err
