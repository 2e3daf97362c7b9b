"""Durations and byte sizes as people write them (``500ms``, ``2m``, ``10MiB``).

A base module (no dora_zenoh imports but ``errors``): the CLI's option types, and any
setting or YAML field that takes a duration or a size, parse with these so one
spelling means the same everywhere.
"""
from __future__ import annotations

import re

from dora_zenoh.errors import UnitError

_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*")
_SECONDS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}

_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", re.IGNORECASE)
# No bare k/m/g: ``10m`` is ten minutes as a duration, so a size spells its unit out.
_BYTES = {"": 1, "b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4,
          "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}


MAX_SECONDS = 1e9  # ~31 years: far below what a thread can wait for (threading.TIMEOUT_MAX, ~292 years)


def parse_duration(text: str) -> float:
    """``10``, ``10s``, ``500ms``, ``2m``, ``1h`` -> seconds (a plain number is seconds)."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise UnitError(f"'{text}' is not a duration: use e.g. 10s, 500ms, 2m or 1h")
    seconds = float(m.group(1)) * _SECONDS[m.group(2)]
    if seconds > MAX_SECONDS:  # a wait that long overflows the platform's clock
        raise UnitError(f"'{text}' is too long a duration: at most {MAX_SECONDS:.0f} s (about 31 years)")
    return seconds


def parse_size(text: str) -> int:
    """``4096``, ``512B``, ``64KiB``, ``10MiB``, ``1GiB`` (powers of 1024) or ``10kB``, ``5MB``, ``1GB``
    (powers of 1000) -> bytes; units are case-insensitive, a plain number is bytes."""
    m = _SIZE.fullmatch(text)
    factor = _BYTES.get(m.group(2).lower()) if m else None
    if m is None or factor is None:
        raise UnitError(f"'{text}' is not a size: use e.g. 4096, 64KiB, 10MiB or 1GB")
    value = float(m.group(1)) * factor
    if value != int(value):
        raise UnitError(f"'{text}' is not a whole number of bytes")
    return int(value)


def format_size(n: float) -> str:
    """Bytes for a message: ``512 B``, ``1.5 KiB``, ``256 MiB`` (one decimal when not whole)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" or float(n).is_integer() else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover
