"""Keep idle CPUs quick to wake while a dataflow runs (Linux PM QoS, ``/dev/cpu_dma_latency``).

Why: a message between two nodes on different CPUs ends with the kernel waking the
receiver's CPU. An idle CPU sleeps, and the deeper it sleeps the longer that takes
(a deep C-state; a virtual CPU that halted and that the hypervisor must run again).
Where that is slow it is most of a small message's latency, for every runtime
(measured: see docs/design/cpu-latency.md).

Linux's PM QoS interface is the standard way to ask for this (cyclictest and tuned's
``latency-performance`` profile use it): a process writes the wake-up latency it can
accept, in µs, to ``/dev/cpu_dma_latency`` and keeps the file open; cpuidle then keeps
every CPU out of idle states slower than that, and the kernel drops the request when
the file is closed, also when the process dies. The price is power: at ``0`` idle
CPUs poll instead of sleeping. So it is an explicit option of ``dora-zenoh run`` and
``start`` (``--cpu-latency-us``), never a default.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from dora_zenoh.errors import CpuLatencyError

DEVICE = "/dev/cpu_dma_latency"
MAX_US = 2**31 - 1  # the request is a signed 32-bit value (struct.pack failed past it, cryptically)
_CPUIDLE = Path("/sys/devices/system/cpu/cpuidle")
_HALT_POLL = Path("/sys/module/haltpoll/parameters/guest_halt_poll_ns")


class CpuLatencyRequest:
    """An open PM QoS request; it holds until :meth:`release` (or until the process ends)."""

    def __init__(self, microseconds: int, device: str = DEVICE) -> None:
        if not 0 <= microseconds <= MAX_US:
            raise CpuLatencyError(f"--cpu-latency-us must be 0 to {MAX_US} microseconds, not {microseconds}")
        self.microseconds = microseconds
        try:
            self._fd: int | None = os.open(device, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise CpuLatencyError(
                f"--cpu-latency-us needs {device} (Linux PM QoS), which this system does not have; "
                "run without the option") from None
        except PermissionError:
            raise CpuLatencyError(
                f"--cpu-latency-us needs write access to {device}: run as root, give the user access "
                f"(e.g. a udev rule: KERNEL==\"cpu_dma_latency\", GROUP=\"robot\", MODE=\"0660\"), "
                "or run without the option") from None
        try:
            os.write(self._fd, struct.pack("=i", microseconds))
        except OSError as exc:
            self.release()
            raise CpuLatencyError(f"the kernel refused a {microseconds} µs request on {device}: "
                                  f"{exc.strerror}") from None

    def release(self) -> None:
        """Withdraw the request (closing the file is how PM QoS is told). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def current_limit(device: str = DEVICE) -> int | None:
    """The wake-up latency in force, in µs (the smallest request of all processes), or None
    when it cannot be read. With no request the kernel reports 2,000,000,000."""
    try:
        with open(device, "rb") as f:
            return struct.unpack("=i", f.read(4))[0]
    except (OSError, struct.error):
        return None


def idle_settings() -> dict[str, str | int | None]:
    """How this machine's idle CPUs sleep: what decides the cost of waking one.

    ``guest_halt_poll_ns`` is the KVM guest's halt polling (an idle vCPU polls this long
    before halting; the kernel's default is 200000, 0 turns it off); None where the
    haltpoll driver is absent.
    """
    def read(path: Path) -> str | None:
        try:
            return path.read_text().strip()
        except OSError:
            return None

    poll = read(_HALT_POLL)
    return {"cpuidle_driver": read(_CPUIDLE / "current_driver"),
            "cpuidle_governor": read(_CPUIDLE / "current_governor_ro") or read(_CPUIDLE / "current_governor"),
            "guest_halt_poll_ns": int(poll) if poll is not None and poll.isdigit() else None,
            "cpu_latency_limit_us": current_limit()}
