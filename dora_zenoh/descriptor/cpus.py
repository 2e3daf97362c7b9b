"""CPU lists as people write them (``2``, ``"0,2-3"``, ``[0, 2, 3]``) and as ``taskset -c`` prints them.

Pure syntax, no system call: the YAML schema parses ``cpu_affinity:`` with it, the runner
formats masks with it. Which CPUs this machine lets a node use is :mod:`.host`'s business.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable

__all__ = ["format_cpu_list", "parse_cpu_list"]

_FORMS = "should be a CPU number, a list such as [0, 1] or a string such as \"0-3,6\""


def parse_cpu_list(value: int | str | Iterable[int]) -> list[int]:
    """``2`` / ``"0,2-3"`` / ``[0, 2, 3]`` -> ``[0, 2, 3]``.

    Raises ValueError with a message meant to follow the setting's name
    (``cpu_affinity should be ...``), showing the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(_FORMS)
    if isinstance(value, int):
        items: list[int] = [value]
    elif isinstance(value, str):
        items = []
        for part in (p.strip() for p in value.split(",")):
            first, dash, last = part.partition("-")
            if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
                raise ValueError(f"should be a CPU list such as 2, \"0,1\" or \"0-3,6\" (got {value!r})")
            low, high = int(first), int(last) if dash else int(first)
            if high < low:
                raise ValueError(f"has a range that runs backwards ({part.strip()!r}); write {high}-{low}")
            items.extend(range(low, high + 1))
    else:
        try:
            items = list(value)
        except TypeError:
            raise ValueError(_FORMS) from None
        if any(isinstance(i, bool) or not isinstance(i, int) for i in items):
            raise ValueError("should list CPU numbers, e.g. [0, 1]")
    if not items:
        raise ValueError("is empty; name at least one CPU, e.g. [0]")
    if min(items) < 0:
        raise ValueError(f"has a negative CPU number ({min(items)}); CPUs are numbered from 0")
    return sorted(set(items))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``: the form ``taskset -c`` and ``/proc`` use."""
    parts = []
    # Consecutive CPUs share (cpu - its index): each group is one run.
    for _, group in itertools.groupby(enumerate(sorted(set(cpus))), lambda pair: pair[1] - pair[0]):
        run = [cpu for _, cpu in group]
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)
