"""A ``ZENOH_RUNTIME`` the user set, tried before any process of the dataflow reads it.

Zenoh reads the variable once, when a process opens its first session, and panics on a value
it cannot parse: the node died with a Rust panic and a Python traceback in its log, after the
nodes before it had started. A process's runtime cannot be tried twice, so a value is tried
in a throwaway process (a session with no link at all), once per value and runner; the
values dora-zenoh itself gives (``zconfig``) are not tried.
"""
from __future__ import annotations

import os
import subprocess
import sys

from dora_zenoh.errors import SettingError
from dora_zenoh.wire import zconfig

_OURS = frozenset({zconfig.NODE_RUNTIME, zconfig.BLOCK_NODE_RUNTIME, zconfig.REPLAY_NODE_RUNTIME,
                   zconfig.SUPERVISOR_RUNTIME})
_READ: set[str] = set()  # values already tried here, and read by Zenoh
_TRY = ("import zenoh; c = zenoh.Config(); "
        "c.insert_json5('scouting/multicast/enabled', 'false'); c.insert_json5('listen/endpoints', '[]'); "
        "zenoh.open(c).close()")


def check(value: str, where: str) -> None:
    """Raise SettingError, naming ``where`` (a node, the environment) and the fix, unless Zenoh
    reads ``value`` as its runtime."""
    if value in _OURS or value in _READ:
        return
    env = {**os.environ, zconfig.RUNTIME_ENV: value}
    try:
        res = subprocess.run([sys.executable, "-c", _TRY], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise SettingError(f"{where}: ZENOH_RUNTIME={value!r}: a Zenoh session with it did not open "
                           "within 60 s; unset it, or give fewer threads") from None
    if res.returncode == 0:
        _READ.add(value)
        return
    lines = [line.strip() for line in res.stderr.splitlines() if line.strip()]
    why = next((line for line in reversed(lines) if "Error" in line or "panicked" in line), lines[-1] if lines else "")
    why = why.split("`Err` value: ", 1)[-1][:300]  # Zenoh's parse error, without the panic around it
    raise SettingError(f"{where}: ZENOH_RUNTIME={value!r} is not a runtime Zenoh can read ({why}): "
                       f"write it as e.g. {zconfig.BLOCK_NODE_RUNTIME!r} (docs/reference/environment.md), "
                       "or unset it")
