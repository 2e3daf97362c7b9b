#!/usr/bin/env python3
"""What one call costs on a cold CPU: the value and payload work of a message at a low rate.

At 50 msg/s among many processes, every message finds the caches cold, and a call costs many
times what a warm loop says. This evicts the caches (touches 16 MiB, then sleeps 20 ms so other
processes run) before each call, and reports the median thread CPU time (``thread_time_ns``) of
each operation over ``--rounds`` calls: decoding a received one-element int64 Arrow stream (the
IPC reader, the remembered layout, lazily), building any pyarrow array at all, and encoding one
for sending (the IPC writer, the remembered frame). See docs/scale-and-logs.md, "Where a node's
CPU goes".

    python scripts/cold_cost.py --rounds 40
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from dora_zenoh.node import arrow
from dora_zenoh.wire import codec

_junk = bytearray(16 << 20)


def _evict() -> None:
    for i in range(0, len(_junk), 4096):
        _junk[i] = (_junk[i] + 1) & 255
    time.sleep(0.02)


def cold_us(call: Callable[[], Any], rounds: int) -> float:
    """Median thread CPU time of ``call`` in µs, caches evicted before each call."""
    times = []
    for _ in range(rounds):
        _evict()
        start = time.thread_time_ns()
        call()
        times.append(time.thread_time_ns() - start)
    return statistics.median(times) / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=40)
    opts = ap.parse_args()
    arrow._load()
    array = pa.array([12345], type=pa.int64())
    raw = bytes(codec.encode(array)[0])

    def writer() -> bytes:
        batch = pa.record_batch([array], names=["value"])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as out:
            out.write_batch(batch)
        return sink.getvalue().to_pybytes()

    buf = pa.py_buffer(raw)
    arrow.decode(raw, codec.ENC_ARROW)  # learns the layout
    how = arrow.recipe(raw, codec.ENC_ARROW)
    codec.encode(array)  # learns the frame
    cases = {
        "decode: IPC reader (open_stream)": lambda: pa.ipc.open_stream(pa.py_buffer(raw)).read_next_batch().column(0),
        "decode: remembered layout (build)": lambda: arrow.build(raw, how),
        "decode: lazily, value never read (recipe)": lambda: arrow.recipe(raw, codec.ENC_ARROW),
        "any array: py_buffer": lambda: pa.py_buffer(raw),
        "any array: Array.from_buffers": lambda: pa.Array.from_buffers(pa.int64(), 1, [None, buf.slice(280, 8)]),
        "any array: array.slice": lambda: array.slice(0, 1),
        "encode: IPC writer": writer,
        "encode: send_output's (remembered frame)": lambda: codec.encode(array),
    }
    for name, call in cases.items():
        print(f"{name:45s} {cold_us(call, opts.rounds):8.1f} µs")


if __name__ == "__main__":
    main()
