"""The checks that look at THIS machine: files on disk, programs on PATH, CPUs a node may run on.

Everything else in the descriptor is a pure function of the YAML text; these answers
change with the folder, ``$PATH`` and the cgroup the check runs in, so they are kept
apart (a check run on one machine says nothing of another).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from dora_zenoh.descriptor.context import Context, DataPath
from dora_zenoh.descriptor.cpus import parse_cpu_list

__all__ = ["executable", "existing_file", "local", "supported", "unusable", "usable_cpus"]

_RELATIVE_HINT = "relative paths are taken from the folder of the dataflow file"


# -- CPUs ------------------------------------------------------------------------------------


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
    saved = os.sched_getaffinity(0)
    for cpu in cpus:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            bad.append(cpu)
        else:
            os.sched_setaffinity(0, saved)
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


# -- files and programs ----------------------------------------------------------------------


def local(ctx: Context, name: str) -> Path:
    """``name`` as a path: ``~`` expanded, relative ones taken from the dataflow's folder."""
    path = Path(os.path.expanduser(name))
    return path if path.is_absolute() else ctx.base_dir / path


def _missing(ctx: Context, what: str, name: str, path: Path, at: DataPath, label: str | None) -> None:
    state = "is a folder" if path.is_dir() else "does not exist"
    ctx.add(f"{what} '{name}' {state} (looked in {ctx.base_dir})", at, label, hint=_RELATIVE_HINT)


def existing_file(ctx: Context, name: str, at: DataPath, label: str | None, what: str) -> str | None:
    """Absolute, resolved path of a file named relative to the dataflow folder, or None after a problem."""
    path = local(ctx, name)
    if not path.is_file():
        _missing(ctx, what, name, path, at, label)
        return None
    return str(path.resolve())


def executable(ctx: Context, name: str, at: DataPath, label: str | None, what: str) -> str | None:
    """Absolute path of a program: relative to the dataflow folder, else found on PATH."""
    path = local(ctx, name)
    if "/" in name or path.is_file():
        if not path.is_file():
            _missing(ctx, what, name, path, at, label)
            return None
        if not os.access(path, os.X_OK):
            ctx.add(f"{what} '{name}' is not executable", at, label, hint=f"chmod +x {path}")
            return None
        return os.path.abspath(path)
    found = shutil.which(name)
    if found is None:
        ctx.add(
            f"{what} '{name}' does not exist (looked in {ctx.base_dir} and on PATH)",
            at,
            label,
            hint="give a path relative to the dataflow file, or install the program",
        )
        return None
    return os.path.abspath(found)
