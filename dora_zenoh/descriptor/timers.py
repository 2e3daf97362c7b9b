"""The one parser of ``dora/timer/...`` sources, shared by the YAML checks and YAML-less nodes.

Pure Python with no third-party import: node processes use it at start-up.
"""
from __future__ import annotations

import difflib
import math
import re

from dora_zenoh.errors import DoraZenohError

PREFIX = "dora/timer/"
UNITS_NS = {"millis": 1_000_000, "secs": 1_000_000_000}
HINT = "timers are written dora/timer/millis/N, dora/timer/secs/N or dora/timer/hz/N"
MIN_PERIOD_NS = 1_000  # 1 MHz: a faster timer is a typo, and would only burn a CPU


class TimerError(DoraZenohError, ValueError):
    """A ``dora/timer/...`` source that is not a valid timer; ``hint`` says how to write one."""

    def __init__(self, message: str, hint: str = HINT) -> None:
        super().__init__(message, hint)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})"


def is_timer(source: str) -> bool:
    """Whether an input source names a built-in source (``dora/...``) rather than a node's output."""
    return source.startswith("dora/")


def parse_timer(source: str) -> int:
    """The period in nanoseconds of ``dora/timer/<millis|secs|hz>/<N>``; raises :class:`TimerError`.

    Periods are whole positive numbers (``millis``, ``secs``) and frequencies positive
    numbers (``hz``); anything faster than ``MIN_PERIOD_NS`` is refused.
    """
    parts = source.split("/")
    if len(parts) != 4 or parts[0] != "dora" or parts[1] != "timer":
        raise TimerError(f"unknown built-in source '{source}'")
    unit, amount = parts[2], parts[3]
    if unit == "hz":
        try:
            rate = float(amount)
        except ValueError:
            rate = math.nan
        if not math.isfinite(rate):
            raise TimerError(f"timer frequency '{amount}' is not a number", "e.g. dora/timer/hz/30")
        if rate <= 0:
            raise TimerError(f"timer frequency must be positive, not {amount}", "e.g. dora/timer/hz/30")
        period = round(1e9 / rate)
    elif unit in UNITS_NS:
        if not re.fullmatch(r"[+-]?\d+", amount):
            raise TimerError(f"timer period '{amount}' is not a whole number", f"e.g. dora/timer/{unit}/100")
        if int(amount) <= 0:
            raise TimerError(f"timer period must be positive, not {amount}", f"e.g. dora/timer/{unit}/100")
        period = int(amount) * UNITS_NS[unit]
    else:
        close = difflib.get_close_matches(unit, [*UNITS_NS, "hz"], n=1)
        raise TimerError(f"unknown timer unit '{unit}' in '{source}'",
                         (f"did you mean '{close[0]}'? " if close else "") + HINT)
    if period < MIN_PERIOD_NS:
        raise TimerError(f"timer '{source}' is faster than 1 MHz", "use a period of at least 1 µs")
    return period
