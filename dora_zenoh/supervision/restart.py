"""The restart policy of a node, as pure functions: when to restart, and after how long.

Kept apart from the run loop (which only asks these two questions) so the rules can be
read, and tested, without processes: ``restart_policy`` (never | on-failure | always),
``max_restarts`` and ``restart_delay`` from the YAML.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dora_zenoh.descriptor import ResolvedNode

RESTART_DELAY = 0.5      # seconds before the first restart when the YAML gives no restart_delay
RESTART_DELAY_MAX = 30.0  # the delay doubles with each restart of a node, up to this


@dataclass(frozen=True)
class RestartRule:
    """A node's restart settings from its YAML entry."""

    policy: str = "never"  # never | on-failure | always
    max_restarts: int | None = None  # None: no limit
    restart_delay: float | None = None  # None: RESTART_DELAY

    @classmethod
    def of(cls, node: ResolvedNode) -> RestartRule:
        return cls(node.restart_policy, node.max_restarts, node.restart_delay)


def next_delay(rule: RestartRule, restarts_done: int) -> float:
    """Seconds to wait before restart number ``restarts_done + 1``.

    The first delay is the YAML's ``restart_delay`` (default RESTART_DELAY); it doubles with
    each restart, up to RESTART_DELAY_MAX, so a node that keeps crashing does not spin.
    """
    first = rule.restart_delay if rule.restart_delay is not None else RESTART_DELAY
    return min(RESTART_DELAY_MAX, first * 2 ** min(restarts_done, 64))  # 2**64: past any cap, no overflow


def restarts_after(rule: RestartRule, status: str, restarts_done: int) -> bool:
    """Whether a node whose process ended with ``status`` (a NodeResult status) starts again.

    ``on-failure`` restarts a failed node, ``always`` a succeeded one too; a node stopped or
    killed by the run never restarts (the run loop does not ask while stopping), and none
    restarts more than ``max_restarts`` times.
    """
    if rule.policy == "never":
        return False
    if rule.max_restarts is not None and restarts_done >= rule.max_restarts:
        return False
    return status == "failed" or (rule.policy == "always" and status == "succeeded")
