"""The fork server ("zygote"): one process that imports the node side once, then forks each node.

A Python node process spends ~0.2 s of CPU on imports before it does anything (zenoh,
dora_zenoh.node, pyarrow and numpy); at 100 nodes that is the whole start-up of a dataflow.
The zygote pays them once. It is started with ``subprocess`` like any node (never forked
from the runner, which has a Zenoh session open), imports, and then only forks.

Why fork is safe here: the zygote opens no Zenoh session and runs no thread besides its
main one, which it checks after the imports (``/proc/self/task``) and reports; a fork of a
single-threaded process that holds no session is the same as a fresh interpreter with
those modules imported. OpenBLAS's thread pool (numpy) is shut down after the import, as
OpenBLAS itself does before any fork (it restarts on first use), and pyarrow's jemalloc
background thread is not started (the default pool is mimalloc). If a thread remains, the
zygote says so and the runner does not use it.

Each child becomes what ``subprocess.Popen`` would have started (see :func:`_become`):
its own session, the given environment, cwd, CPU mask, stdin /dev/null, stdout and
stderr on the runner's pipes (passed as file descriptors), ``sys.argv`` and ``sys.path[0]``,
the script or module run as ``__main__``, Python's own handling of an uncaught exception
and of ``SystemExit``, default signal dispositions, and ``PR_SET_PDEATHSIG`` so that no
node outlives a zygote that dies. The zygote reaps its children and reports each exit
status to the runner (:mod:`.forkserver` holds the runner's side and the protocol).

Protocol, one JSON object per ``SOCK_SEQPACKET`` message on the socket inherited from the
runner (file descriptor ``argv[1]``; ``argv[2]`` is room for the children's titles, see
:func:`set_title`): ``{"ready": pid, "threads": n}`` (or ``{"error": ...}``)
once; then per request ``{"id", "argv", "cwd", "env", "cpus", "script" | "module",
"executable"}`` with the child's stdout and stderr fds, answered ``{"id", "pid"}`` with a
pidfd of the child (or ``{"id", "error"}``); and ``{"exit": pid, "code": n}`` when a child
ends (``code`` as ``Popen.returncode``: negative for a signal). When the runner closes
its end, the zygote takes no more requests and exits once its children have.
"""
from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import importlib.machinery
import json
import os
import pkgutil
import runpy
import selectors
import signal
import socket
import sys
import traceback
import types
from typing import Any

MAX_MESSAGE = 1 << 20  # a request's size limit (the runner starts a node with a larger one with Popen)
PR_SET_PDEATHSIG = 1
# What a node imports (pyarrow/numpy only when installed), and every module of the node side's
# packages but the operator runtime itself, which runs as __main__ (``python -m``).
PRELOAD = ("zenoh", "dora", "pyarrow", "numpy", "numpy.random")
PACKAGES = ("dora_zenoh.node", "dora_zenoh.operators")
RUNTIME_MODULE = "dora_zenoh.operators.runtime"


def threads() -> int:
    """How many threads this process has (1 is what makes forking it safe)."""
    return len(os.listdir("/proc/self/task"))


def _stop_openblas() -> None:
    """Shut numpy's OpenBLAS thread pool down (what OpenBLAS's own pre-fork handler does; the
    pool starts again, in the child, on its first parallel call)."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "openblas" in line.rsplit("/", 1)[-1].lower()}
    for path in libs:
        try:
            shutdown = getattr(ctypes.CDLL(path), "blas_thread_shutdown_", None)
        except OSError:
            continue
        if shutdown is not None:
            shutdown()


def preload() -> list[str]:
    """Import the node side; returns what could not be imported (optional modules)."""
    missing = []
    names = list(PRELOAD)
    for package in PACKAGES:
        try:
            path = importlib.import_module(package).__path__
        except ImportError:
            missing.append(package)
            continue
        names += [m.name for m in pkgutil.iter_modules(path, package + ".") if m.name != RUNTIME_MODULE]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if "numpy" in sys.modules:
        _stop_openblas()
    gc.collect()
    gc.freeze()  # the children's collections leave the shared objects' pages alone
    return missing


class Zygote:
    """The serving loop: requests from the runner, exits of children."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sel = selectors.DefaultSelector()
        self.sel.register(sock, selectors.EVENT_READ, None)
        self.children: dict[int, int] = {}  # pidfd -> pid
        self.open = True

    def send(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        try:
            socket.send_fds(self.sock, [json.dumps(msg).encode()], fds or [])
        except OSError:  # the runner is gone: its children are the reaper's now
            self.open = False

    def serve(self) -> dict[str, Any] | None:
        """Until the runner hangs up and every child has ended. Returns in a forked child
        only: the request it is to become."""
        while self.open or self.children:
            for key, _ in self.sel.select():
                if key.data is None:
                    spec = self._request()
                    if spec is not None:
                        return spec
                else:
                    self._reap(key.fd)
        return None

    def _request(self) -> dict[str, Any] | None:
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 4)
        except OSError:
            data, fds = b"", []
        if not data:
            self.open = False
            self.sel.unregister(self.sock)
            for fd in fds:
                os.close(fd)
            return None
        req = json.loads(data)
        me = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send({"id": req["id"], "error": f"fork: {exc}"})
            return None
        if pid == 0:
            try:
                self._child(fds, me)
            except BaseException:  # noqa: BLE001 - never back into the zygote's loop
                os._exit(127)
            return req
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = pid
        self.sel.register(pidfd, selectors.EVENT_READ, pid)
        self.send({"id": req["id"], "pid": pid}, [pidfd])
        return None

    def _reap(self, pidfd: int) -> None:
        pid = self.children.pop(pidfd)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self.send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def _child(self, fds: list[int], zygote: int) -> None:
        """Right after fork, in the child: leave the zygote behind (its socket, selector, the
        other children's pidfds), and put the runner's pipes on stdin/stdout/stderr."""
        os.setsid()
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != zygote:  # the zygote died before the line above: no orphan
            os._exit(1)
        for pidfd in self.children:
            os.close(pidfd)
        self.sel.close()
        self.sock.close()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.closerange(3, max(3, os.sysconf("SC_OPEN_MAX")))  # Popen's close_fds: only 0, 1 and 2 stay open


# -- in the child ------------------------------------------------------------------------------------
_interrupted = False


def _exit_by_sigint() -> None:
    """Registered before the node's code runs, so it runs after the node's own atexit
    functions: an uncaught KeyboardInterrupt ends the process by SIGINT, as CPython does."""
    if _interrupted:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def set_title(title: str) -> None:
    """What ``ps`` and ``/proc/PID/cmdline`` show for this process: ``title`` written over the
    original argument strings (as setproctitle(3) does; the runner gives the zygote a padding
    argument for room). The area's last byte is left non-NUL, which tells the kernel to show it
    up to the title's end."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (proc(5))
    if end - start < 2:
        return
    data = title.encode(errors="replace")[: end - start - 2] + b"\0"
    ctypes.memmove(start, data + b" " * (end - start - len(data)), end - start)


def _become(spec: dict[str, Any]) -> None:
    """The process state ``python [-u] SCRIPT ARGS`` (or ``-m MODULE``) would have, before its code runs."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the zygote ignores it (see main)
    os.chdir(spec["cwd"])
    os.environ.clear()
    os.environ.update(spec["env"])
    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
    sys.executable = spec["executable"]
    sys.orig_argv = list(spec["argv"])
    try:
        set_title(" ".join(spec["argv"]))
    except (OSError, ValueError, IndexError):  # cosmetic: ps shows the zygote's command instead
        pass
    if "numpy.random" in sys.modules:  # its global generator was seeded once, in the zygote
        sys.modules["numpy.random"].seed()


def _trimmed(tb: Any) -> Any:
    """The traceback from the node's first frame on (as ``python script.py`` would print it)."""
    ours = {os.path.abspath(__file__), os.path.abspath(runpy.__file__), "<frozen runpy>"}  # -m: as python -m
    while tb is not None and tb.tb_next is not None and (
            tb.tb_frame.f_code.co_filename in ours or os.path.abspath(tb.tb_frame.f_code.co_filename) in ours):
        tb = tb.tb_next
    return tb


def _fresh_main() -> types.ModuleType:
    """A ``__main__`` module as a new interpreter has it (the zygote's own is this module)."""
    main = types.ModuleType("__main__")
    main.__annotations__ = {}
    main.__builtins__ = sys.modules["builtins"]  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    return main


def run_child(spec: dict[str, Any]) -> None:
    """Run the node's code as ``__main__``; ends like the interpreter would (exit code, traceback)."""
    global _interrupted
    try:
        _become(spec)
    except OSError as exc:  # e.g. a CPU of its cpu_affinity went offline (Popen would fail too)
        print(f"{spec['executable']}: cannot start the node: {exc}", file=sys.stderr, flush=True)
        os._exit(1)
    atexit.register(_exit_by_sigint)
    main = _fresh_main()
    try:
        if "module" in spec:  # what `python -m` does (runpy's entry point for it)
            sys.path[0] = os.getcwd()
            sys.argv = ["-m", *spec["args"]]
            sys.modules.pop(spec["module"], None)
            runpy._run_module_as_main(spec["module"], alter_argv=True)  # type: ignore[attr-defined]
        else:  # what `python SCRIPT` does
            script = spec["script"]
            sys.path[0] = os.path.dirname(os.path.realpath(script))
            sys.argv = [script, *spec["args"]]
            try:
                with open(script, "rb") as f:
                    source = f.read()
            except OSError as exc:
                print(f"{sys.executable}: can't open file {os.path.abspath(script)!r}: "
                      f"[Errno {exc.errno}] {exc.strerror}", file=sys.stderr)
                raise SystemExit(2) from None
            main.__file__ = script
            main.__cached__ = None  # type: ignore[attr-defined]
            main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
            code = compile(source, script, "exec", dont_inherit=True)  # not this module's __future__ flags
            exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:  # what the interpreter does with an uncaught exception
        tb = _trimmed(exc.__traceback__)
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        try:
            sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        except BaseException:  # a broken excepthook: Python prints both
            traceback.print_exception(type(exc), exc, tb)
        _interrupted = isinstance(exc, KeyboardInterrupt)
        raise SystemExit(1) from None


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        set_title(" ".join(sys.orig_argv[:-1]))  # without the padding (sys.argv[2])
    except (OSError, ValueError, IndexError):
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the reaper's SIGTERM is for the nodes; PDEATHSIG is KILL
    try:
        missing = preload()
        count = threads()
        # the top-level modules a node gets from here rather than from its own directory
        tops = sorted({name.partition(".")[0] for name in sys.modules})
        ready = {"ready": os.getpid(), "threads": count, "missing": missing, "modules": tops}
        socket.send_fds(sock, [json.dumps(ready).encode()], [])
    except BaseException as exc:  # noqa: BLE001 - reported to the runner, which falls back to Popen
        socket.send_fds(sock, [json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()], [])
        return
    if count != 1:
        return  # not safe to fork: the runner reads "threads" and does not use this zygote
    spec = Zygote(sock).serve()
    if spec is not None:
        run_child(spec)


if __name__ == "__main__":
    main()
