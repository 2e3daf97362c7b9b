"""The restart policy as pure functions: which outcomes restart a node, and after how long."""
from __future__ import annotations

import pytest

from dora_zenoh.supervision.restart import (
    RESTART_DELAY,
    RESTART_DELAY_MAX,
    RestartRule,
    next_delay,
    restarts_after,
)


def test_default_delay_is_half_a_second_doubling():
    rule = RestartRule("on-failure")
    assert RESTART_DELAY == 0.5
    assert [next_delay(rule, done) for done in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_yaml_restart_delay_is_the_first_delay():
    rule = RestartRule("always", restart_delay=3.0)
    assert [next_delay(rule, done) for done in range(3)] == [3.0, 6.0, 12.0]


def test_zero_restart_delay_stays_zero():
    assert next_delay(RestartRule("always", restart_delay=0.0), 10) == 0.0


def test_delay_is_capped_at_30_seconds():
    assert RESTART_DELAY_MAX == 30.0
    assert next_delay(RestartRule("on-failure"), 5) == 16.0
    assert next_delay(RestartRule("on-failure"), 6) == 30.0  # 32 s capped
    assert next_delay(RestartRule("on-failure", restart_delay=45.0), 0) == 30.0
    assert next_delay(RestartRule("on-failure"), 10_000) == 30.0  # no overflow after many restarts


@pytest.mark.parametrize(("policy", "status", "restarts"), [
    ("never", "failed", False),
    ("never", "succeeded", False),
    ("on-failure", "failed", True),
    ("on-failure", "succeeded", False),
    ("on-failure", "stopped", False),
    ("on-failure", "killed", False),
    ("always", "failed", True),
    ("always", "succeeded", True),
    ("always", "stopped", False),
    ("always", "killed", False),
])
def test_policy_against_outcome(policy, status, restarts):
    assert restarts_after(RestartRule(policy), status, 0) is restarts


def test_max_restarts_limits_restarts():
    rule = RestartRule("always", max_restarts=2)
    assert restarts_after(rule, "failed", 0)
    assert restarts_after(rule, "failed", 1)
    assert not restarts_after(rule, "failed", 2)
    assert not restarts_after(rule, "succeeded", 3)


def test_max_restarts_zero_never_restarts():
    assert not restarts_after(RestartRule("on-failure", max_restarts=0), "failed", 0)


def test_no_max_restarts_means_no_limit():
    assert restarts_after(RestartRule("on-failure"), "failed", 1_000_000)


def test_rule_of_a_resolved_node(tmp_path):
    from dora_zenoh.descriptor import load_descriptor

    (tmp_path / "n.py").write_text("")
    (tmp_path / "dataflow.yml").write_text(
        "nodes:\n"
        "  - id: n\n"
        "    path: n.py\n"
        "    restart_policy: on-failure\n"
        "    max_restarts: 3\n"
        "    restart_delay: 1.5\n"
        "  - id: m\n"
        "    path: n.py\n")
    nodes = {n.id: n for n in load_descriptor(tmp_path / "dataflow.yml").nodes}
    assert RestartRule.of(nodes["n"]) == RestartRule("on-failure", 3, 1.5)
    assert RestartRule.of(nodes["m"]) == RestartRule("never", None, None)
