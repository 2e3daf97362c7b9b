"""node/config.py and node/compat.py: choosing a configuration source, and telling the 2022 API apart.

Every case here fails before a Zenoh session is opened (bad input is refused first).
"""
from __future__ import annotations

import sys

import pytest

from dora_zenoh import settings
from dora_zenoh.errors import NodeConfigError
from dora_zenoh.node.compat import caller_unpacks
from dora_zenoh.node.config import join


@pytest.fixture(autouse=True)
def _no_runner(monkeypatch):
    monkeypatch.delenv(settings.NODE_CONFIG.name, raising=False)


def test_no_runner_and_no_id_says_how_to_start():
    with pytest.raises(NodeConfigError, match="not started by dora-zenoh.*dora-zenoh run dataflow.yml"):
        join(None, None, None, None, None)


def test_a_malformed_runner_config_names_the_variable(monkeypatch):
    monkeypatch.setenv(settings.NODE_CONFIG.name, '{"node": "n"}')
    with pytest.raises(NodeConfigError, match=r"^DORA_ZENOH_NODE_CONFIG: field 'dataflow' is missing"):
        join("ignored", None, None, None, None)


def test_the_runner_config_wins_over_arguments(monkeypatch):
    """Started by a runner, ``Node("x", inputs=...)`` is the runner's node: its bad arguments are not read."""
    monkeypatch.setenv(settings.NODE_CONFIG.name, "not json")
    with pytest.raises(NodeConfigError, match="DORA_ZENOH_NODE_CONFIG is not JSON"):
        join("x", None, None, {"t": "dora/timer/millis/0"}, None)


def test_a_ros_like_bad_timer_is_refused_before_any_session(monkeypatch):
    monkeypatch.setenv(settings.ENDPOINT.name, "tcp/127.0.0.1:1")  # nothing listens: never reached
    with pytest.raises(NodeConfigError, match="input 't' of node 'x': timer period must be positive, not -5"):
        join("x", None, None, {"t": "dora/timer/millis/-5"}, None)


class _Probe:
    def next(self) -> tuple[bool, None]:
        return caller_unpacks(sys._getframe(1)), None


def test_2022_api_is_told_apart_by_unpacking():
    probe = _Probe()
    unpacks, _ = probe.next()
    assert unpacks is True
    result = probe.next()
    assert result[0] is False
    assert probe.next()[0] is False


def test_a_frame_that_cannot_be_read_is_the_current_api():
    assert caller_unpacks(object()) is False
