"""Starting a process on a chosen set of CPUs (the CPU-list syntax is :mod:`dora_zenoh.descriptor.cpus`).

Why a node may want it: waking a thread on an idle CPU can cost far more than switching
to it on a busy one, so keeping a latency-critical pair of nodes on one core, or each
node's own threads together, is the usual cure (``taskset`` in a ROS 2 launch prefix);
``cpu_affinity:`` in the YAML does it without a wrapper (see docs/design/affinity.md).

How: a child process inherits the CPU mask of the thread that starts it. The runner
narrows its *own thread's* mask around ``subprocess.Popen`` and restores it after,
so the node's first instruction, and every thread it ever creates (Zenoh's
included), already runs under the mask. No ``preexec_fn`` (the runner has a Zenoh
session open and must not run Python between fork and exec) and no window in which
the node runs unpinned. Linux only (``os.sched_setaffinity``).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

# The CPU-list syntax and the "which CPUs may a node use here" check belong to the descriptor
# (cpu_affinity: is checked with the YAML); the names stay importable from here.
from dora_zenoh.descriptor.cpus import format_cpu_list, parse_cpu_list

__all__ = ["format_cpu_list", "inherited_by_children", "parse_cpu_list"]


@contextlib.contextmanager
def inherited_by_children(cpus: Iterable[int] | None) -> Iterator[None]:
    """Within the block, processes started by this thread run on ``cpus`` (None: unchanged).

    Only the calling thread's mask changes, and only for the block: other threads of
    this process (Zenoh's, the runner's own) are untouched.
    """
    if cpus is None:
        yield
        return
    cpus, saved = set(cpus), os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:  # e.g. a CPU taken offline since the dataflow was checked
        raise OSError(exc.errno, f"cannot run on CPUs {format_cpu_list(cpus)} ({exc.strerror})") from None
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)
