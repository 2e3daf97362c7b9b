"""The runner's side of the fork server (:mod:`.zygote`): when to use it, and a Popen-like handle.

A node is forked from the zygote only where that is the same thing as ``subprocess.Popen``:
its command is this interpreter (``sys.executable``, or ``python``/``python3`` that resolves
to it on the node's PATH), with no flag but ``-u``, running a ``.py`` file or the operator
runtime (``-m dora_zenoh.operators.runtime``), and its environment agrees with the zygote's
on everything read while the interpreter starts or the preloaded modules are imported
(:data:`STARTUP_PREFIXES`, :data:`STARTUP_NAMES`). Anything else, and any failure of the
zygote, is started with Popen, as before; a failure is logged once and the zygote is not
used again by that run.

``DORA_ZENOH_FORKSERVER`` (:data:`dora_zenoh.settings.FORKSERVER`) decides whether a run
starts one: ``auto`` for dataflows with at least :data:`AUTO_MIN_NODES` such nodes.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import IO, Any

from dora_zenoh import settings
from dora_zenoh.console import warn
from dora_zenoh.supervision.zygote import MAX_MESSAGE, RUNTIME_MODULE

__all__ = ["AUTO_MIN_NODES", "ForkServer", "ForkedProcess", "eligible_command", "for_nodes", "startup_env"]

AUTO_MIN_NODES = 16
TITLE_ROOM = "-" * 4000  # the zygote's last argument: where a child writes its command line for ps
READY_TIMEOUT_S = 60.0  # the zygote's imports (a loaded machine: several seconds)
REPLY_TIMEOUT_S = 30.0
# Environment read when the interpreter starts or the zygote's modules are imported: a node
# whose value differs from the zygote's is started with Popen.
STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "OPENBLAS", "GOTO", "OMP_", "MKL_", "ARROW_", "JE_", "MALLOC_")
STARTUP_NAMES = frozenset({"LANG", "LANGUAGE", "TZ", "HOME", "VIRTUAL_ENV", "GLIBC_TUNABLES",
                           settings.EXPRESS.name})
_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")


def startup_env(env: dict[str, str]) -> dict[str, str]:
    """The part of ``env`` that a fork from the zygote could not change."""
    return {k: v for k, v in env.items() if k in STARTUP_NAMES or k.startswith(STARTUP_PREFIXES)}


def _interpreter(program: str, env: dict[str, str]) -> str | None:
    """``program`` as this interpreter's path, or None if it is another program."""
    if not os.path.isabs(program):
        if not _PYTHON_RE.match(program):
            return None
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            return None
        program = os.path.abspath(found)
    ours = sys.executable
    same = os.path.dirname(program) == os.path.dirname(ours) and os.path.realpath(program) == os.path.realpath(ours)
    return program if program == ours or same else None


def eligible_command(argv: Sequence[str], env: dict[str, str]) -> dict[str, Any] | None:
    """What the zygote must run for ``argv`` (script or module, args, executable), or None
    when ``argv`` is not ``python [-u] SCRIPT.py ...`` / ``python [-u] -m <runtime>`` on this interpreter."""
    if not argv:
        return None
    exe = _interpreter(argv[0], env)
    if exe is None:
        return None
    rest = list(argv[1:])
    unbuffered = False
    while rest and rest[0] == "-u":
        unbuffered = True
        rest.pop(0)
    if not (unbuffered or env.get("PYTHONUNBUFFERED")):
        return None  # the zygote's stdio is unbuffered (as every node's the runner starts)
    if len(rest) >= 2 and rest[0] == "-m" and rest[1] == RUNTIME_MODULE:
        return {"module": RUNTIME_MODULE, "args": rest[2:], "executable": exe}
    if rest and rest[0].endswith(".py") and not rest[0].startswith("-"):
        return {"script": rest[0], "args": rest[1:], "executable": exe}
    return None


def shadowing(folder: str, modules: frozenset[str]) -> bool:
    """Whether ``folder`` (a node's ``sys.path[0]``) holds a module named like one the zygote
    imported: a separate interpreter would import the node's own (e.g. a ``json.py`` next to the
    script), a forked node has the zygote's already."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return True
    return any(entry.partition(".")[0] in modules for entry in entries
               if entry.endswith((".py", ".pyc", ".so")) or "." not in entry)


class ForkedProcess:
    """A node forked by the zygote, with the parts of ``subprocess.Popen`` the runner uses.

    Signals go through a pidfd, so one can never reach another process that got the pid
    after the node ended; the exit status comes from the zygote (the node's parent).
    """

    def __init__(self, args: list[str], pid: int, pidfd: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.args = args
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = None
        self.returncode: int | None = None
        self._pidfd: int | None = pidfd
        self._code: int | None = None
        self._done = threading.Event()
        self._orphaned = False  # the zygote died: no exit status will come

    def _ended(self, code: int) -> None:
        self._code = code
        self._done.set()

    def _zygote_lost(self) -> None:
        self._orphaned = True
        self._done.set()

    def _settle(self, timeout: float | None) -> bool:
        if not self._done.wait(timeout):
            return False
        if self._orphaned and self._code is None:
            # PR_SET_PDEATHSIG killed it (or it ended unreported): wait until it is gone.
            if self._pidfd is not None and not select.select([self._pidfd], [], [], timeout)[0]:
                return False
            self._code = -signal.SIGKILL
        if self.returncode is None:
            self.returncode = self._code
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return True

    def poll(self) -> int | None:
        self._settle(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._settle(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """One zygote process for one run: started at once, waited for at the first node.

    ``env`` is the run's base environment (what every node's environment starts from): the
    zygote starts with it, so the nodes that agree with it on :func:`startup_env` can be forked.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self._startup = startup_env(self.env)
        self._lock = threading.Lock()  # one request at a time
        self._next_id = 0
        # request id -> (answered, the answer, argv, stdout and stderr read ends)
        self._replies: dict[int, tuple[threading.Event, list[Any], list[str], int, int]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._ready = threading.Event()
        self._modules: frozenset[str] = frozenset()  # imported in the zygote (top-level names)
        self._usable = True
        self._warned = False
        self._stderr_tail: list[str] = []
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):  # a request is one message: room for a large environment
            with contextlib.suppress(OSError):
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE)
        self._sock = ours
        zenv = dict(self.env)
        # pyarrow's jemalloc (not its default pool) would start a background thread at import
        je = zenv.get("JE_ARROW_MALLOC_CONF")
        zenv["JE_ARROW_MALLOC_CONF"] = (je + "," if je else "") + "background_thread:false"
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-u", "-m", "dora_zenoh.supervision.zygote", str(theirs.fileno()), TITLE_ROOM],
                pass_fds=[theirs.fileno()], env=zenv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.proc = None
            self._failed(f"could not start it: {exc}")
        finally:
            theirs.close()
        if self.proc is not None:
            threading.Thread(target=self._read, daemon=True, name="forkserver").start()
            threading.Thread(target=self._read_stderr, daemon=True, name="forkserver-stderr").start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _failed(self, why: str) -> None:
        """Stop using the zygote; say so once."""
        self._usable = False
        if not self._warned:
            self._warned = True
            warn(f"fork server: {why}; nodes start as separate interpreters instead "
                 f"(set {settings.FORKSERVER.name}=0 to skip it)")

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr_tail = (self._stderr_tail + [raw.decode(errors="replace").rstrip()])[-5:]
        self.proc.stderr.close()

    def _read(self) -> None:
        """The zygote's messages: its readiness, replies to requests, exits of children."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, 65536, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                break
            msg = json.loads(data)
            if "exit" in msg:
                child = self._children.pop(msg["exit"], None)
                if child is not None:
                    child._ended(msg["code"])
            elif "id" in msg:
                self._answered(msg, fds)
            elif "ready" in msg:
                self._modules = frozenset(msg.get("modules", ()))
                if msg.get("threads") != 1:
                    self._failed(f"its process has {msg.get('threads')} threads after its imports (forking is "
                                 "only safe with one)")
                self._ready.set()
            elif "error" in msg:
                self._failed(f"its imports failed: {msg['error']}")
                self._ready.set()
        # The zygote is gone (it exits only once we hang up and its children have ended):
        # its children died with it (PR_SET_PDEATHSIG) and their statuses with it.
        unexpected = self._usable  # else we hung up (close)
        if unexpected:
            self._failed("it ended unexpectedly" + (f" ({'; '.join(self._stderr_tail)})" if self._stderr_tail else ""))
        self._ready.set()
        for child in list(self._children.values()):
            if unexpected:
                # What the node started in its process group (its session, of which it is the
                # leader) would outlive it: a group's id is not reused while it has members.
                with contextlib.suppress(OSError):
                    os.killpg(child.pid, signal.SIGKILL)
            child._zygote_lost()
        for pending in list(self._replies.values()):
            pending[0].set()

    def _answered(self, msg: dict[str, Any], fds: list[int]) -> None:
        """A reply: the child's handle is made and registered here, before the reader takes
        the next message (which may be that child's exit)."""
        with self._lock:  # against start() giving up on it at the same moment
            pending = self._replies.pop(msg["id"], None)
            if pending is not None and "pid" in msg and fds:
                event, slot, args, out_r, err_r = pending
                child = ForkedProcess(args, msg["pid"], fds[0], open(out_r, "rb"), open(err_r, "rb"))
                self._children[child.pid] = child
                slot.append(child)
                event.set()
                return
        for fd in fds:  # a request that timed out: its node must not run unsupervised
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
        if pending is not None:
            pending[1].append(msg)
            pending[0].set()

    def start(self, argv: list[str], cwd: str, env: dict[str, str], cpus: Iterable[int] | None) -> ForkedProcess | None:
        """Fork a node like ``Popen(argv, cwd, env, stdin=DEVNULL, stdout=PIPE, stderr=PIPE,
        start_new_session=True)`` would start it, on ``cpus`` (None: this thread's CPUs), or
        None when the zygote cannot (then use Popen)."""
        if not self._usable:
            return None
        plan = eligible_command(argv, env)
        if plan is None or startup_env(env) != self._startup or not os.path.isdir(cwd):
            return None
        if not self._ready.wait(READY_TIMEOUT_S):
            self._failed(f"it was not ready after {READY_TIMEOUT_S:g} s")
            return None
        if not self._usable:
            return None
        path0 = os.path.dirname(os.path.realpath(os.path.join(cwd, plan["script"]))) if "script" in plan else cwd
        if shadowing(path0, self._modules):
            return None
        request = {**plan, "argv": list(argv), "cwd": os.path.abspath(cwd), "env": env,
                   "cpus": sorted(cpus) if cpus is not None else sorted(os.sched_getaffinity(0))}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        event = threading.Event()
        slot: list[Any] = []
        with self._lock:
            self._next_id += 1
            request["id"] = self._next_id
            body = json.dumps(request).encode()
            self._replies[request["id"]] = (event, slot, list(argv), out_r, err_r)
            try:
                if len(body) > MAX_MESSAGE:
                    raise OSError(errno.EMSGSIZE, "request too large")
                socket.send_fds(self._sock, [body], [out_w, err_w])
                sent = True
            except OSError as exc:
                sent = False
                self._replies.pop(request["id"], None)
                if exc.errno != errno.EMSGSIZE:  # a huge environment: that node only uses Popen
                    self._failed(f"a request failed: {exc}")
            finally:
                os.close(out_w)
                os.close(err_w)
        answered = sent and event.wait(REPLY_TIMEOUT_S)
        with self._lock:
            unanswered = self._replies.pop(request["id"], None) is not None
        if slot and isinstance(slot[0], ForkedProcess):
            return slot[0]
        os.close(out_r)
        os.close(err_r)
        if slot:
            self._failed(f"it could not fork: {slot[0].get('error', 'no pidfd')}")
        elif sent and unanswered and not answered and self._usable:
            self._failed(f"no answer within {REPLY_TIMEOUT_S:g} s")
        return None

    def close(self, timeout: float = 5.0) -> None:
        """Hang up: the zygote exits once its children have (bounded wait here)."""
        self._usable = False
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:  # a child still runs: the reaper's business now
                pass
        self._sock.close()


def for_nodes(nodes: Iterable[Any], env: dict[str, str]) -> ForkServer | None:
    """The run's fork server, per ``DORA_ZENOH_FORKSERVER``: None when it is off, when too few
    of ``nodes`` are Python nodes for ``auto``, or on a system without pidfds."""
    mode = settings.FORKSERVER.get_or_default()
    python = sum(1 for n in nodes if n.kind in ("python", "runtime"))
    if mode == "0" or python == 0 or (mode == "auto" and python < AUTO_MIN_NODES):
        return None
    if not hasattr(os, "pidfd_open") or not hasattr(signal, "pidfd_send_signal"):
        return None
    return ForkServer(env)
