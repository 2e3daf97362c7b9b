"""Names, ids and directories of runs: one place for what `run`, the coordinator and the CLI share.

A dataflow's name becomes a Zenoh key chunk, so it is sanitized once, here; state that
outlives a run (coordinator logs, fallback run logs) goes under ``$XDG_STATE_HOME/dora-zenoh``.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from dora_zenoh.console import warn
from dora_zenoh.errors import LogDirError


def sanitize_name(name: str) -> str:
    """A dataflow name usable as one Zenoh key chunk."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return clean or "dataflow"


def new_run_id() -> str:
    """Sortable and unique enough: ``20261125-004512-3fa2``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def state_home() -> Path:
    """``$XDG_STATE_HOME/dora-zenoh`` (``~/.local/state/dora-zenoh`` when unset or empty); not created."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "dora-zenoh"


def state_dir() -> Path:
    """:func:`state_home`, created; ``/tmp`` if it cannot be (a read-only home must not stop `up`)."""
    base = state_home()
    try:
        base.mkdir(parents=True, exist_ok=True)
        return base
    except OSError:
        return Path("/tmp")


def make_log_dir(base: Path, run_id: str) -> Path:
    """``base/run_id``, created; if that fails, ``<state home>/out/run_id``.

    Raises LogDirError naming both places when neither can be created.
    """
    path = Path(base) / run_id
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError as exc:
        first = f"{path.parent} ({exc.strerror})"
    path = state_home() / "out" / run_id
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogDirError(f"cannot create a log directory for the run in {first} nor in {path.parent} "
                          f"({exc.strerror}); pass --log-dir with a directory you can write to") from None
    warn(f"cannot create the run's log directory in {first}: its logs go to {path}")  # (it was silent)
    return path
