"""Who sent a command, and whether the paths in it are theirs to use.

Only the coordinator's user, root and (with ``--group``) the group's members can
reach the control socket (see :mod:`.control`). In owner-only mode that is the whole
check. With a group, the coordinator runs each command as its own user on behalf of
someone it cannot see (Zenoh hides the socket's peer credentials), so the client
states its uid; the coordinator accepts the claim only for root, itself or a member
of the group, and then refuses any file or log directory that user could not have
read or written themselves. A member who lies about their uid gains nothing: the
group was already allowed to start programs as the coordinator's user (docs/security.md).
"""
from __future__ import annotations

import json
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dora_zenoh.errors import NotAuthorizedError
from dora_zenoh.security.control import user_name

READ, WRITE, SEARCH = 4, 2, 1


@dataclass(frozen=True)
class Requester:
    """The Unix identity a command is checked against."""

    uid: int
    gids: frozenset[int]

    @property
    def name(self) -> str:
        return user_name(self.uid)


def identity(uid: int) -> Requester:
    """``uid`` with its groups (primary and supplementary, from the user database)."""
    try:
        entry = pwd.getpwuid(uid)
        gids = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    except KeyError:
        gids = frozenset()
    return Requester(uid, gids)


def authorize(claimed: object, owner: int, gid: int | None) -> Requester:
    """The requester a command runs for, or NotAuthorizedError.

    Without a group only the owner and root can connect, so a missing or odd claim is
    the owner. With a group the claim must be root, the owner or a member.
    """
    if gid is None:
        return identity(claimed if isinstance(claimed, int) and claimed in (0, owner) else owner)
    if not isinstance(claimed, int) or claimed < 0:
        raise NotAuthorizedError("not authorized: this coordinator is shared with a group and needs the requester's "
                            "uid (use the dora-zenoh CLI of the same version)")
    who = identity(claimed)
    if claimed not in (0, owner) and gid not in who.gids:
        raise NotAuthorizedError(f"not authorized: {who.name} is not in the coordinator's group; nothing was done")
    return who


def requester(attachment: Any, owner: int, gid: int | None) -> Requester:
    """:func:`authorize` for a control command whose query carries ``attachment`` (the client's
    ``{"uid": N}`` claim as Zenoh bytes, or None). Raises ValueError for an attachment that is not
    JSON."""
    claim = json.loads(attachment.to_bytes()) if attachment is not None else {}
    return authorize(claim.get("uid") if isinstance(claim, dict) else None, owner, gid)


def _allows(info: os.stat_result, who: Requester, bit: int) -> bool:
    if who.uid == 0:
        return True
    if info.st_uid == who.uid:
        return bool(info.st_mode & (bit << 6))
    if info.st_gid in who.gids:
        return bool(info.st_mode & (bit << 3))
    return bool(info.st_mode & bit)


def _searchable(folder: Path, who: Requester) -> bool:
    """Whether ``who`` may walk into ``folder`` (every directory on the way needs x)."""
    for part in [*reversed(folder.parents), folder]:
        if not _allows(part.stat(), who, SEARCH):
            return False
    return True


def check_readable(path: str, who: Requester, what: str) -> Path:
    """The resolved ``path`` if ``who`` could read it; else NotAuthorizedError naming the file."""
    real = Path(os.path.realpath(path))
    try:
        ok = _searchable(real.parent, who) and _allows(real.stat(), who, READ)
    except OSError as exc:
        raise NotAuthorizedError(f"cannot use {what} {path}: {exc.strerror}") from None
    if not ok:
        raise NotAuthorizedError(f"not authorized: {who.name} cannot read {what} {path}; nothing was done")
    return real


def check_writable_dir(path: str, who: Requester, what: str) -> Path:
    """The resolved directory if ``who`` could create or write it; else NotAuthorizedError.

    A directory that does not exist yet needs its nearest existing ancestor writable.
    """
    if not os.path.isabs(path):
        raise NotAuthorizedError(f"{what} must be an absolute path, not {path!r}")
    real = Path(os.path.realpath(path))
    existing = real
    while not existing.exists():
        existing = existing.parent
    try:
        info = existing.stat()
        ok = (stat.S_ISDIR(info.st_mode) and _searchable(existing, who)
              and _allows(info, who, WRITE))
    except OSError as exc:
        raise NotAuthorizedError(f"cannot use {what} {path}: {exc.strerror}") from None
    if not ok:
        raise NotAuthorizedError(f"not authorized: {who.name} cannot write {what} {path} ({existing} is not "
                            "writable by them); nothing was done")
    return real
