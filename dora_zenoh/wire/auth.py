"""Closed dataflows: every Zenoh link of the dataflow needs the dataflow's own password.

A closed (``--secure``) run makes a random user and password, writes them as the one
line of a file only its Unix user can read (``user:password``, which is also the
format of Zenoh's ``usrpwd`` dictionary), and hands the file's path to every process
it starts in ``$DORA_ZENOH_SECRET_FILE``. Each session then presents those credentials
when it connects and demands them from whoever connects to it, so a session without
them gets no link at all: it can neither read nor publish on the dataflow's keys, nor
forge its end-of-stream, exit or stop facts (Zenoh refuses it; our code never sees it).

Read-only tools (recorders, viewers) get a second file, ``observer``, with a user of
their own: the dataflow's sessions accept it but their access control drops every
put, delete, liveliness token, queryable and reply it sends (measured: enforced on
direct peer links too, by the receiving peer). An observer's session never listens,
so its file needs no dictionary and never holds the dataflow's own password.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

from dora_zenoh import settings
from dora_zenoh.errors import SecretError

SECRET_ENV = settings.SECRET_FILE.name
FOLDER_PREFIX = "dora-zenoh-secret-"
OBSERVER_PREFIX = "obs-"


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def make_secret() -> Path:
    """Fresh credentials in a new owner-only directory (remove with :func:`discard`).

    ``credentials``: the dataflow's user first, then the observer's (the dictionary
    every session of the dataflow checks); ``observer``: the observer's line alone.
    """
    flow = f"dz-{secrets.token_hex(6)}:{secrets.token_urlsafe(24)}"
    observer = f"{OBSERVER_PREFIX}{secrets.token_hex(6)}:{secrets.token_urlsafe(24)}"
    return keep_secret(f"{flow}\n{observer}\n")


def keep_secret(text: str) -> Path:
    """``text`` (a ``credentials`` file's, e.g. the coordinator's for another machine's part)
    as a ``credentials`` file and its ``observer`` in a new owner-only directory."""
    lines = [line for line in text.splitlines() if line.strip()]
    if (len(lines) != 2 or any(":" not in line or not line.partition(":")[2] for line in lines)
            or not lines[1].startswith(OBSERVER_PREFIX)):
        raise SecretError("expected a closed dataflow's credentials: two lines user:password, the observer's second")
    prune_stale()
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))  # mode 0700
    _write(folder / "owner", f"{os.getpid()} {_created(os.getpid())}\n")
    _write(folder / "observer", lines[1] + "\n")
    _write(folder / "credentials", "\n".join(lines) + "\n")
    return folder / "credentials"


def prune_stale() -> int:
    """Remove this user's credential folders whose process is gone; how many.

    A process that makes one removes it when it ends (:func:`discard`), but not when it is
    killed (SIGKILL, a crash): one run of the test suite left 9 behind, each with a dead
    dataflow's password. The ``owner`` file names the process (pid and start time, so that a
    reused pid does not keep it); a folder without one is left as it is.
    """
    pruned = 0
    for folder in Path(tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"):
        try:
            if folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            pid, created = (folder / "owner").read_text().split()
            if _created(int(pid)) == float(created):
                continue
        except (OSError, ValueError):  # not ours to judge, or gone meanwhile
            continue
        shutil.rmtree(folder, ignore_errors=True)
        pruned += 1
    return pruned


def _created(pid: int) -> float | None:
    """When process ``pid`` started (None if there is none, or only its zombie)."""
    import psutil  # here: a node never makes credentials, and psutil costs its start-up

    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
    except psutil.Error:
        return None


def observer_file(secret: Path) -> Path:
    """The read-only credentials next to a run's ``credentials``."""
    return secret.parent / "observer"


def discard(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)


def session_auth(path: str) -> tuple[dict[str, object], dict[str, object] | None]:
    """``transport/auth/usrpwd`` and ``access_control`` (None for an observer) for a session.

    A member of the dataflow presents and checks the credentials, and refuses every
    write from the observer user; an observer only presents its own.
    """
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise SecretError(f"{SECRET_ENV}={path}: cannot read the dataflow's credentials ({exc.strerror}); a "
                          "closed dataflow's tools need the file its runner printed") from None
    if not lines or any(":" not in line or not line.partition(":")[2] for line in lines):
        raise SecretError(f"{SECRET_ENV}={path}: expected lines user:password")
    user, _, password = lines[0].partition(":")
    if user.startswith(OBSERVER_PREFIX):
        return {"user": user, "password": password}, None
    observers = [u for u in (line.partition(":")[0] for line in lines[1:]) if u.startswith(OBSERVER_PREFIX)]
    acl = {
        "enabled": True,
        "default_permission": "allow",
        "rules": [{"id": "read-only", "permission": "deny", "flows": ["ingress"],
                   "messages": ["put", "delete", "liveliness_token", "declare_queryable", "reply"],
                   "key_exprs": ["**", "*/@dz/**"]}],
        "subjects": [{"id": "observers", "usernames": observers}],
        "policies": [{"rules": ["read-only"], "subjects": ["observers"]}],
    } if observers else None
    return {"user": user, "password": password, "dictionary_file": str(path)}, acl
