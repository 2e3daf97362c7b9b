"""Where the coordinator's control plane listens, and who can reach it.

The coordinator answers commands on a Zenoh session of its own that listens only on a
Unix socket, ``/tmp/dora-zenoh-<uid>/ctl-<port>/sock``, in a directory of its own that only
its user (and, with ``--group``, one group) may enter; the user's directory above it can be
passed through but not listed, so coordinators of one user on several endpoints each keep
their own access rule. The kernel then decides who may connect:
no secret file to leak, no password in a process's environment, and root is let in as
root always is. That session is never linked to the hub (the TCP endpoint nodes join),
so nothing reachable from the hub answers a command or carries a log line.

A client finds the socket from the hub endpoint: the Unix user that owns the hub's
listening TCP socket (``/proc/net/tcp``, readable by anyone) is the coordinator's user.
"""
from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import stat
import time
from pathlib import Path

import zenoh

from dora_zenoh import settings
from dora_zenoh.errors import ControlDirError, NotAuthorizedError
from dora_zenoh.wire import proc_tcp
from dora_zenoh.wire.endpoint import parse

STALE_AFTER = 10.0  # s: a control socket's lock file younger than this is never judged stale
BASE_ENV = settings.CONTROL_BASE.name  # where the per-user directories go (default /tmp)
SOCKET_ENV = settings.CONTROL.name  # an explicit control socket path (overrides the lookup)


def _base() -> Path:
    return Path(settings.CONTROL_BASE.get())


def _slug(endpoint: str) -> str:
    """``7447`` for ``tcp/127.0.0.1:7447``; a short hash for other endpoints."""
    ep = parse(endpoint)
    if ep.stream_port is not None:
        port = str(ep.stream_port)
        return port if ep.host in ("127.0.0.1", "localhost", "::1") else f"{ep.host}-{port}".replace(":", "_")
    return hashlib.sha256(endpoint.encode()).hexdigest()[:12]


def control_dir(uid: int) -> Path:
    return _base() / f"dora-zenoh-{uid}"


def socket_path(endpoint: str, uid: int | None = None) -> Path:
    """The control socket of the coordinator of ``uid`` (default: this process's) on ``endpoint``."""
    explicit = settings.CONTROL.get()
    if explicit:
        return Path(explicit)
    return control_dir(os.getuid() if uid is None else uid) / f"ctl-{_slug(endpoint)}" / "sock"


def control_endpoint(path: Path) -> str:
    return f"unixsock-stream/{path}"


def session_config(listen: list[str] | None = None, connect: list[str] | None = None) -> zenoh.Config:
    """The control session: a peer listening on the socket, or a client connecting to it.

    Deliberately not based on ``$DORA_ZENOH_ZENOH_CONFIG``: the control plane never
    joins a wider network, whatever the data plane does.
    """
    conf = zenoh.Config()
    conf.insert_json5("mode", '"client"' if connect else '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/gossip/enabled", "false")
    conf.insert_json5("scouting/delay", "0")
    conf.insert_json5("listen/endpoints", json.dumps(listen or []))
    conf.insert_json5("connect/endpoints", json.dumps(connect or []))
    return conf


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def group_id(name: str) -> int:
    """The gid of ``--group NAME``, or a clear error."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ControlDirError(f"no Unix group named '{name}' (see `getent group`); create it with "
                              f"`groupadd {name}` and add the users who may operate the coordinator") from None


def own_directory(made: Path, mode: int) -> None:
    """Make ``made`` (with ``mode``) unless it exists; ControlDirError unless it is a directory of
    this user, not a symlink: in a shared /tmp someone else may have made it first."""
    made.mkdir(mode=mode, parents=True, exist_ok=True)
    info = made.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ControlDirError(f"{made} is not a directory owned by {user_name(os.getuid())} (owner: "
                              f"{user_name(info.st_uid)}): someone else made it; remove it, or set "
                              f"{BASE_ENV} to a directory of yours")


def prepare(endpoint: str, gid: int | None) -> Path:
    """Create (or check) the owner-only control directory; the socket path inside it.

    An existing directory must be ours and not a symlink: in a shared /tmp someone else
    could have made it first to catch our commands, so we refuse rather than use it.
    A stale socket of a dead coordinator is removed (the hub port was free, so none runs).
    """
    path = socket_path(endpoint)
    folder = path.parent
    user_dir = folder.parent if not settings.CONTROL.get() else None
    for made in ([user_dir] if user_dir is not None else []) + [folder]:
        own_directory(made, 0o700)
    if user_dir is not None:
        os.chmod(user_dir, 0o711)  # others may pass through to a coordinator's own directory, not list it
    if gid is None:
        os.chown(folder, -1, os.getgid())
        os.chmod(folder, 0o700)
    else:
        try:
            os.chown(folder, -1, gid)
        except PermissionError:
            raise ControlDirError(f"cannot give group '{_group_name(gid)}' access to {folder}: "
                                  f"{user_name(os.getuid())} is not a member of it (`usermod -aG "
                                  f"{_group_name(gid)} {user_name(os.getuid())}`, then log in again)") from None
        os.chmod(folder, 0o750)
    if path.is_socket() or path.is_symlink():
        path.unlink()
        with contextlib.suppress(FileNotFoundError):  # its lock: Zenoh makes a fresh one (see _prune_dead)
            path.with_name(path.name + ".lock").unlink()
    elif path.exists():
        raise ControlDirError(f"{path} exists and is not a socket; remove it")
    if user_dir is not None:
        _prune_dead(user_dir)
    return path


def _prune_dead(user_dir: Path) -> None:
    """Remove the control directories of coordinators that were killed (:func:`release` removes a
    stopping one's). Zenoh holds an flock on ``sock.lock`` while it listens and removes both files
    when it closes; a killed coordinator leaves them, unlocked (118 such directories on the test VM
    after a day of tests). A lock file younger than STALE_AFTER is left: its coordinator may be
    about to lock it."""
    import fcntl  # here: POSIX only, like the Unix socket itself

    for lock in user_dir.glob("ctl-*/sock.lock"):
        try:
            info = lock.stat()
            if lock.parent.is_symlink() or info.st_uid != os.getuid() or time.time() - info.st_mtime < STALE_AFTER:
                continue
            fd = os.open(lock, os.O_RDONLY)
        except OSError:  # gone meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its coordinator listens
            os.close(fd)
            continue
        try:  # removed while we hold its lock: nothing can listen there meanwhile
            for name in ("sock", "sock.lock"):
                with contextlib.suppress(FileNotFoundError):
                    (lock.parent / name).unlink()
            with contextlib.suppress(OSError):  # something else in it: left
                lock.parent.rmdir()
        finally:
            os.close(fd)


def listening(path: Path) -> bool:
    """Whether a live session listens on the control socket ``path``: Zenoh holds an flock on
    ``sock.lock`` while it does (see ``_prune_dead``)."""
    import fcntl  # here: POSIX only, like the Unix socket itself

    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # (also lets go of the lock, if taken)
    return False


def release(path: Path) -> None:
    """After the coordinator closed its control session: its socket and the directory
    :func:`prepare` made for it go (one empty ``ctl-PORT`` directory per endpoint ever used
    was left behind: 37 after one run of the test suite). The user's directory stays (others'
    coordinators share it), and so does the folder of a socket path the user chose
    (``$DORA_ZENOH_CONTROL``)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_socket():
            path.unlink()
    if not settings.CONTROL.get():
        with contextlib.suppress(OSError):  # not empty (someone put a file there): left as it is
            path.parent.rmdir()


def restrict_socket(path: Path, gid: int | None) -> None:
    """After Zenoh created the socket: owner (and group) may connect, nobody else."""
    if gid is None:
        os.chmod(path, 0o600)
    else:
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)


def listener_uid(endpoint: str) -> int | None:
    """The Unix user owning the TCP listening socket of ``tcp|tls/HOST:PORT`` (Linux), else None."""
    port = parse(endpoint).stream_port
    if port is None:
        return None
    return next((int(fields[7]) for fields in proc_tcp.rows(port, proc_tcp.LISTEN)), None)


def locate(endpoint: str) -> Path:
    """The control socket a client should use for the coordinator on ``endpoint``.

    Raises NotAuthorizedError when the coordinator's directory exists but this user may not
    enter it (the kernel would refuse the connection anyway; this says why).
    """
    explicit = settings.CONTROL.get()
    if explicit:
        return Path(explicit)
    owner = listener_uid(endpoint)
    uid = os.getuid() if owner is None else owner
    path = socket_path(endpoint, uid)
    folder = path.parent
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return path  # no coordinator of that user: the caller reports "not running"
    except PermissionError:
        info = None
    if info is not None and (not stat.S_ISDIR(info.st_mode) or info.st_uid != uid
                             or info.st_mode & 0o002):
        raise NotAuthorizedError(f"refusing the control directory {folder}: it is not a private directory of "
                            f"{user_name(uid)} (someone else may have made it)")
    if not os.access(folder, os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        group = info.st_gid if info is not None and info.st_mode & 0o010 else None
        raise NotAuthorizedError(not_authorized_message(endpoint, uid, group))
    return path


def not_authorized_message(endpoint: str, uid: int, gid: int | None) -> str:
    """Who may operate that coordinator, who is asking, and what to do instead."""
    who = user_name(uid)
    group = f", members of group '{_group_name(gid)}'" if gid is not None else ""
    allowed = f"{who}{group}" + (" and root" if uid != 0 else "")  # (not "root and root")
    return (f"not authorized: the coordinator on {endpoint} runs as {who} and takes commands only from "
            f"{allowed}, not from {user_name(os.getuid())}; nothing was done. Ask its owner, "
            "or run your own coordinator on another endpoint (`dora-zenoh up --endpoint tcp/127.0.0.1:PORT`)")


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
