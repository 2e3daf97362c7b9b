"""CPU lists (``0,2-3``) and starting a process on a chosen set of CPUs.

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
import itertools
import os
from collections.abc import Iterable, Iterator

__all__ = ["format_cpu_list", "inherited_by_children", "parse_cpu_list", "supported", "unusable", "usable_cpus"]


def supported() -> bool:
    """Whether this platform lets a process choose its CPUs (Linux: yes; macOS: no)."""
    return hasattr(os, "sched_setaffinity")


def unusable(cpus: Iterable[int]) -> list[int]:
    """Those of ``cpus`` a node started from here could not run on (offline, missing, or outside
    this process's cgroup cpuset).

    Each is tried on the calling thread, whose mask is then restored: the kernel's own
    answer, so a CPU kept out of this process's mask only (``taskset``, ``isolcpus``,
    systemd's ``CPUAffinity=``) still counts as usable, as it is for a child.
    """
    bad = []
    for cpu in cpus:
        try:
            with inherited_by_children([cpu]):
                pass
        except OSError:
            bad.append(cpu)
    return bad


def usable_cpus() -> list[int]:
    """Every CPU a node started from here could run on (see :func:`unusable`)."""
    try:
        with open("/sys/devices/system/cpu/online", encoding="ascii") as f:
            online = parse_cpu_list(f.read().strip())
    except (OSError, ValueError):
        online = list(range(os.cpu_count() or 1))
    bad = set(unusable(online))
    return [cpu for cpu in online if cpu not in bad]


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
