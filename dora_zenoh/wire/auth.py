"""Closed dataflows: every Zenoh link of the dataflow needs the dataflow's own password.

A closed (``--secure``) run makes a random user and password, writes them as the one
line of a file only its Unix user can read (``user:password``, which is also the
format of Zenoh's ``usrpwd`` dictionary), and hands the file's path to every process
it starts in ``$DORA_ZENOH_SECRET_FILE``. Each session then presents those credentials
when it connects and demands them from whoever connects to it, so a session without
them gets no link at all: it can neither read nor publish on the dataflow's keys, nor
forge its end-of-stream, exit or stop facts (Zenoh refuses it; our code never sees it).
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

from dora_zenoh.errors import DoraZenohError

SECRET_ENV = "DORA_ZENOH_SECRET_FILE"


class SecretError(DoraZenohError):
    """The credentials file of a closed dataflow is missing or malformed."""


def make_secret() -> Path:
    """A fresh ``user:password`` file in a new owner-only directory (remove with :func:`discard`)."""
    folder = Path(tempfile.mkdtemp(prefix="dora-zenoh-secret-"))  # mode 0700
    path = folder / "credentials"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"dz-{secrets.token_hex(6)}:{secrets.token_urlsafe(24)}\n")
    return path


def discard(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)


def usrpwd(path: str) -> dict[str, str]:
    """``transport/auth/usrpwd`` for a session that both presents and checks the credentials."""
    try:
        line = Path(path).read_text().splitlines()[0]
    except (OSError, IndexError) as exc:
        raise SecretError(f"{SECRET_ENV}={path}: cannot read the dataflow's credentials ({exc}); a closed "
                          "dataflow's tools need the file its runner printed") from None
    user, sep, password = line.partition(":")
    if not sep or not user or not password:
        raise SecretError(f"{SECRET_ENV}={path}: expected one line user:password")
    return {"user": user, "password": password, "dictionary_file": str(path)}
