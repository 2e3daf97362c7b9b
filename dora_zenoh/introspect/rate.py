"""Rate and bandwidth of a topic, like ``ros2 topic hz`` / ``bw``, from what a lossy watcher sees.

The watcher reads from a ring channel that drops the oldest samples when it falls
behind (it must never slow the robot), so counting received samples would under-report
a fast topic. Every dora-zenoh message carries its output's sequence number, so the
rate is counted from sequence numbers (messages *sent*), and the bandwidth is the
mean size of the messages seen times that rate. ``missed`` says how many the watcher
itself did not see. A foreign publisher (no sequence numbers) is counted as received.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass
class Report:
    rate: float             # messages/s sent over the window
    seen: int               # samples this watcher received in the window
    missed: int             # messages sent in the window that this watcher never saw
    period_min: float | None
    period_max: float | None
    period_mean: float | None
    period_std: float | None
    bytes_per_s: float
    mean_size: float
    window: float           # seconds covered

    def as_dict(self) -> dict:
        return dict(vars(self))


class Meter:
    """Samples of one topic over a sliding window (``window`` seconds, at most ``max_samples``)."""

    def __init__(self, window: float = 10.0, max_samples: int = 100_000) -> None:
        self.window = window
        self._samples: deque[tuple[float, int, int | None]] = deque(maxlen=max_samples)

    def add(self, t: float, size: int, seq: int | None) -> None:
        self._samples.append((t, size, seq))

    def _trim(self, now: float) -> None:
        samples = self._samples
        while samples and samples[0][0] < now - self.window:
            samples.popleft()

    def report(self, now: float) -> Report | None:
        """The window's statistics; None before two samples arrived."""
        self._trim(now)
        samples = list(self._samples)
        if len(samples) < 2:
            return None
        t0, t1 = samples[0][0], samples[-1][0]
        span = max(t1 - t0, 1e-9)
        seqs = [s for _, _, s in samples if s is not None]
        if len(seqs) == len(samples) and seqs[-1] > seqs[0]:
            sent = seqs[-1] - seqs[0]           # messages after the first one, seen or not
        else:
            sent = len(samples) - 1
        periods = [b[0] - a[0] for a, b in zip(samples, samples[1:], strict=False)
                   if a[2] is None or b[2] is None or b[2] == a[2] + 1]
        mean_size = sum(s for _, s, _ in samples) / len(samples)
        rate = sent / span
        mean = std = lo = hi = None
        if periods:
            mean = sum(periods) / len(periods)
            std = math.sqrt(sum((p - mean) ** 2 for p in periods) / len(periods))
            lo, hi = min(periods), max(periods)
        return Report(rate=rate, seen=len(samples), missed=max(0, sent + 1 - len(samples)),
                      period_min=lo, period_max=hi, period_mean=mean, period_std=std,
                      bytes_per_s=rate * mean_size, mean_size=mean_size, window=span)


def fmt_rate_line(r: Report) -> str:
    """``ros2 topic hz``'s line: ``average rate: 99.8  min: 0.009s max: 0.011s std dev: 0.00041s``."""
    if r.period_mean is None:
        return f"average rate: {r.rate:.3f}  (no consecutive messages seen: {r.seen} seen, {r.missed} missed)"
    line = (f"average rate: {r.rate:.3f}\n\tmin: {r.period_min:.6f}s max: {r.period_max:.6f}s "
            f"std dev: {r.period_std:.6f}s window: {r.seen + r.missed}")
    if r.missed:
        line += f" ({r.missed} not seen by this watcher: counted from sequence numbers)"
    return line


def fmt_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def fmt_bw_line(r: Report) -> str:
    """``ros2 topic bw``'s line: ``1.23 MB/s from 100 messages\\n\\tMessage size mean: 12.3 KB``."""
    return (f"{fmt_size(r.bytes_per_s)}/s from {r.seen + r.missed} messages\n"
            f"\tMessage size mean: {fmt_size(r.mean_size)}")
