"""Stopping a node's Zenoh threads while its own threads go on (a helper of the tests, not collected).

ptrace stops one thread, not the process: what a node does while Zenoh's threads get no CPU
(a loaded machine, a thread starved by others) can be made to happen on purpose.
"""
from __future__ import annotations

import ctypes
import errno
import os

import pytest

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000  # waitpid's __WALL: wait for a thread, not a child process


def _ptrace(request: int, tid: int) -> None:
    if _libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        if err == errno.EPERM and request == PTRACE_SEIZE:
            pytest.skip("ptrace is not allowed here (kernel.yama.ptrace_scope, or no CAP_SYS_PTRACE): "
                        "it runs as root in CI")
        raise OSError(err, f"ptrace({request:#x}, {tid}): {os.strerror(err)}")


def freeze_zenoh_threads(pid: int) -> list[int]:
    """Stop Zenoh's threads of ``pid`` (ptrace, one thread at a time: the node's own threads
    go on); the caller must ``thaw`` them (the kernel also lets them go if this process dies)."""
    frozen = []
    for tid in (int(t) for t in os.listdir(f"/proc/{pid}/task")):
        name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
        if name.split("-")[0] in ("rx", "tx", "net", "acc", "app"):
            _ptrace(PTRACE_SEIZE, tid)
            _ptrace(PTRACE_INTERRUPT, tid)
            os.waitpid(tid, WALL)
            frozen.append(tid)
    return frozen


def thaw(tids: list[int]) -> None:
    for tid in tids:
        _ptrace(PTRACE_DETACH, tid)
