"""CPU% and RSS of node process trees, measured by the supervisor that started them.

One sampler per supervisor: the coordinator measures the nodes it runs itself, each daemon
the nodes placed on its machine (it sends the figures in its state reports), because psutil
only sees this machine's processes. ``cpu_percent`` is measured between two calls on the
same ``psutil.Process`` object, so the objects are kept from one sample to the next (keyed
by pid and start time: a reused pid is another process).
"""
from __future__ import annotations

from typing import Any

import psutil


class TreeSampler:
    """Samples whole process trees (a node and whatever it started) between calls."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, float], psutil.Process] = {}

    def sample(self, states: list[dict[str, Any]]) -> dict[Any, tuple[float, int]]:
        """``{node id: (cpu %, rss bytes)}`` for the running nodes among ``states`` (the
        ``node_states()`` rows: id, pid, create_time). CPU is 0.0 on a tree's first sample.
        The keys are the rows' ``id`` as given (the coordinator's are (dataflow, node) pairs)."""
        seen: set[tuple[int, float]] = set()
        usage = {s["id"]: self._tree(s["pid"], s.get("create_time"), seen) for s in states if s.get("pid")}
        for key in set(self._cache) - seen:
            del self._cache[key]
        return usage

    def _tree(self, pid: int, create_time: float | None, seen: set[tuple[int, float]]) -> tuple[float, int]:
        cpu, rss = 0.0, 0
        try:
            root = psutil.Process(pid)
            if create_time is not None and abs(root.create_time() - create_time) > 0.01:
                return 0.0, 0  # the pid was reused: not our node
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0.0, 0
        for p in procs:
            try:
                key = (p.pid, p.create_time())
                cached = self._cache.setdefault(key, p)
                seen.add(key)
                cpu += cached.cpu_percent(None)  # since the previous sample (0.0 the first time)
                rss += cached.memory_info().rss
            except psutil.Error:
                continue
        return round(cpu, 1), rss
