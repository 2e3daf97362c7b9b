#!/usr/bin/env python3
"""A link emulator in user space: one-way delay, jitter, random loss and up/down between two namespaces.

Why: `tc netem` is what the multi-machine tests and bench want, but kernels built without
CONFIG_NET_SCH_NETEM (this project's CI among them) cannot add it. TUN is nearly always there,
so each "machine" (a network namespace) gets a TUN device with an address of a /30, and one
process (this one, started with subprocess) reads every packet one side sends, holds it until
its due time, drops it with the given probability (or always while the link is down), and
writes it into the other side. It lives in scripts/ (not dora_zenoh/) because it is a test
and bench tool with no place in the product; the bench runs it and the tests load it by path.

Without IFF_VNET_HDR the TUN device offers no segmentation offload, so the kernel hands it
packets of at most the MTU (TCP segments included); both devices get the same MTU. Its own
floor (latency added with delay 0, packet rate) is measured by `python scripts/linkemu.py
floor` and written in docs/machines.md.

    sudo python scripts/linkemu.py serve --ns-a A --ns-b B --dev-a tA --dev-b tB \
        --addr-a 10.232.1.1 --addr-b 10.232.1.2 --control @mylink --delay-ms 5 --loss 0.02
    sudo python scripts/linkemu.py floor          # measures the emulator's floor, prints JSON
"""
from __future__ import annotations

import argparse
import collections
import fcntl
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
BATCH = 32           # packets read from one side before serving the other and releasing due ones
TXQUEUELEN = 10000   # the kernel's queue in front of each TUN: bursts wait there, not dropped


# -- the forwarding process ------------------------------------------------------------------------


def open_tun(name: str) -> int:
    """A TUN device (layer 3, no packet-info header) in this process's namespace; gone when the fd closes."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


def place(dev: str, ns: str, addr: str, prefix: int, mtu: int) -> None:
    """Move a TUN made here into namespace ``ns`` (its fd keeps working) and give it an address."""
    ip("link", "set", dev, "netns", ns)
    ip("-n", ns, "link", "set", dev, "mtu", str(mtu), "txqueuelen", str(TXQUEUELEN))
    ip("-n", ns, "addr", "add", f"{addr}/{prefix}", "dev", dev)
    ip("-n", ns, "link", "set", dev, "up")
    ip("-n", ns, "link", "set", "lo", "up")


class Shaper:
    """Per-direction queues of packets with their due times, and the link's parameters."""

    def __init__(self, delay_ms: float, jitter_ms: float, loss: float, limit: int, seed: int | None) -> None:
        self.delay = delay_ms / 1000
        self.jitter = jitter_ms / 1000
        self.loss = loss
        self.limit = limit
        self.down = False
        self.rng = random.Random(seed)
        # without jitter a FIFO keeps order (due times only grow); with it a heap, and packets may
        # overtake each other as with netem
        self.fifo: list[collections.deque] = [collections.deque(), collections.deque()]
        self.heap: list[list] = [[], []]
        self.seq = 0
        self.late: collections.deque = collections.deque(maxlen=20000)  # s past due of recent held packets
        self.count = {k: [0, 0] for k in ("received", "sent", "lost", "dropped_down", "dropped_full", "write_errors")}

    def params(self) -> dict[str, Any]:
        return {"delay_ms": self.delay * 1000, "jitter_ms": self.jitter * 1000, "loss": self.loss,
                "down": self.down, "limit": self.limit}

    def set(self, req: dict[str, Any]) -> None:
        if "delay_ms" in req:
            self.delay = float(req["delay_ms"]) / 1000
        if "jitter_ms" in req:
            self.jitter = float(req["jitter_ms"]) / 1000
        if "loss" in req:
            self.loss = float(req["loss"])
        if req.get("reset"):
            self.late.clear()
        if "down" in req:
            self.down = bool(req["down"])
            if self.down:  # a pulled cable loses what is on the wire too
                for d in (0, 1):
                    self.count["dropped_down"][d] += len(self.fifo[d]) + len(self.heap[d])
                    self.fifo[d].clear()
                    self.heap[d].clear()

    def queued(self, d: int) -> int:
        return len(self.fifo[d]) + len(self.heap[d])

    def accept(self, d: int, pkt: bytes, now: float) -> bytes | None:
        """Take a packet read from side ``d``: None if dropped or queued, the packet if due at once."""
        c = self.count
        c["received"][d] += 1
        if self.down:
            c["dropped_down"][d] += 1
            return None
        if self.loss and self.rng.random() < self.loss:
            c["lost"][d] += 1
            return None
        if self.queued(d) >= self.limit:
            c["dropped_full"][d] += 1
            return None
        if self.jitter:
            due = now + max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))
            self.seq += 1
            heapq.heappush(self.heap[d], [due, self.seq, pkt])
            return None
        if not self.delay and not self.fifo[d]:
            return pkt
        self.fifo[d].append((now + self.delay, pkt))
        return None

    def due(self, d: int, now: float) -> list[bytes]:
        out = []
        fifo, heap = self.fifo[d], self.heap[d]
        while fifo and fifo[0][0] <= now:
            due, pkt = fifo.popleft()
            self.late.append(now - due)
            out.append(pkt)
        while heap and heap[0][0] <= now:
            due, _, pkt = heapq.heappop(heap)
            self.late.append(now - due)
            out.append(pkt)
        return out

    def lateness(self) -> dict[str, float | None]:
        """How late held packets left, past their due time (µs): what the emulator adds to a delay."""
        late = sorted(self.late)
        pick = (lambda q: round(late[min(len(late) - 1, int(len(late) * q))] * 1e6, 1)) if late else (lambda q: None)
        return {"late_p50_us": pick(0.5), "late_p90_us": pick(0.9), "late_p99_us": pick(0.99),
                "late_max_us": pick(1.0), "late_samples": len(late)}

    def next_due(self) -> float | None:
        times = [q[0][0] for q in (*self.fifo, *self.heap) if q]
        return min(times) if times else None


def serve(opts: argparse.Namespace) -> int:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    if opts.nice:  # a real link does not slow down when the machine is loaded: be ahead of the nodes
        try:
            os.nice(opts.nice)
        except OSError:
            pass
    if opts.realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except OSError as exc:
            print(f"linkemu: no real-time priority ({exc}); delays will vary with the load", flush=True)
    fds = [open_tun(opts.dev_a), open_tun(opts.dev_b)]
    try:
        place(opts.dev_a, opts.ns_a, opts.addr_a, opts.prefix, opts.mtu)
        place(opts.dev_b, opts.ns_b, opts.addr_b, opts.prefix, opts.mtu)
    except RuntimeError as exc:
        print(f"linkemu: cannot set up the link: {exc}", file=sys.stderr, flush=True)
        return 1
    shaper = Shaper(opts.delay_ms, opts.jitter_ms, opts.loss, opts.limit, opts.seed)
    if opts.down:
        shaper.set({"down": True})
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = socket_address(opts.control)
    if isinstance(address, str):
        Path(address).unlink(missing_ok=True)
    ctl.bind(address)
    ctl.listen(8)
    ctl.setblocking(False)
    bufsize = opts.mtu + 64
    parent = os.getppid()
    check_parent = time.monotonic() + 1
    print(f"linkemu: up {opts.ns_a}/{opts.dev_a} {opts.addr_a} <-> {opts.ns_b}/{opts.dev_b} {opts.addr_b} "
          f"mtu {opts.mtu} {json.dumps(shaper.params())}", flush=True)
    try:
        while not stop:
            now = time.monotonic()
            if now > check_parent:  # an orphan (its test or bench died) ends itself and its devices
                if os.getppid() != parent:
                    break
                check_parent = now + 1
            for d in (0, 1):
                for pkt in shaper.due(d, now):
                    write(fds[1 - d], pkt, shaper, d)
            nxt = shaper.next_due()
            timeout = 1.0 if nxt is None else min(1.0, max(0.0, nxt - time.monotonic()))
            try:
                ready, _, _ = select.select([fds[0], fds[1], ctl], [], [], timeout)
            except InterruptedError:
                continue
            now = time.monotonic()
            for d in (0, 1):
                if fds[d] not in ready:
                    continue
                for _ in range(BATCH):
                    try:
                        pkt = os.read(fds[d], bufsize)
                    except BlockingIOError:
                        break
                    except OSError:  # its namespace was deleted: the link is gone
                        return 0
                    out = shaper.accept(d, pkt, now)
                    if out is not None:
                        write(fds[1 - d], out, shaper, d)
            if ctl in ready:
                control(ctl, shaper)
    finally:
        for fd in fds:
            os.close(fd)
        ctl.close()
        if isinstance(address, str):
            Path(address).unlink(missing_ok=True)
    return 0


def write(fd: int, pkt: bytes, shaper: Shaper, d: int) -> None:
    try:
        os.write(fd, pkt)
        shaper.count["sent"][d] += 1
    except OSError:  # the far device went away or is down: the packet is lost, and counted
        shaper.count["write_errors"][d] += 1


def socket_address(name: str) -> str | bytes:
    """``@name``: a Linux abstract Unix socket (no file, no path length limit, gone with its
    process); anything else: a path."""
    return b"\0" + name[1:].encode() if name.startswith("@") else name


def control(ctl: socket.socket, shaper: Shaper) -> None:
    """One JSON request per connection: parameters to change (or none); the answer is the state."""
    try:
        conn, _ = ctl.accept()
    except BlockingIOError:
        return
    with conn:
        conn.settimeout(2)
        try:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            req = json.loads(data or b"{}")
            shaper.set(req)
            reply = {"ok": True, **shaper.params(), "queued": [shaper.queued(0), shaper.queued(1)],
                     **shaper.lateness(),
                     **{k: v[:] for k, v in shaper.count.items()}}
        except (OSError, ValueError) as exc:
            reply = {"ok": False, "error": str(exc)}
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass


# -- the client side: tests and the bench -------------------------------------------------------------


class Link:
    """The emulated link between namespaces ``ns_a`` and ``ns_b`` (which must exist): start, set, stop.

    Counters in ``stats()`` are per direction, [a->b, b->a]: packets received from the sender's
    TUN, sent to the receiver's, lost (random), dropped while down, dropped on a full queue.
    ``realtime`` (SCHED_FIFO priority 1, the default) keeps the delays close to what was asked on
    a loaded machine; the emulator sleeps whenever no packet is due, so it cannot hog a CPU.
    """

    def __init__(self, ns_a: str, ns_b: str, addr_a: str, addr_b: str, tag: str, workdir: Path,
                 mtu: int = 1500, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss: float = 0.0,
                 prefix: int = 30, seed: int | None = None, realtime: bool = True) -> None:
        self.ns = (ns_a, ns_b)
        self.dev = (f"lea{tag}", f"leb{tag}")
        self.addr = (addr_a, addr_b)
        self.control = f"@dz-linkemu-{tag}-{os.getpid()}"  # abstract: tmp paths can exceed 107 bytes
        self.log = workdir / f"linkemu-{tag}.log"
        self.argv = [sys.executable, __file__, "serve", "--ns-a", ns_a, "--ns-b", ns_b, "--dev-a", self.dev[0],
                     "--dev-b", self.dev[1], "--addr-a", addr_a, "--addr-b", addr_b, "--prefix", str(prefix),
                     "--mtu", str(mtu), "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
                     "--loss", str(loss), "--control", self.control,
                     *(["--seed", str(seed)] if seed is not None else []), *(["--realtime"] if realtime else [])]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Link:
        """Start the emulator and wait (bounded) until it answers on its control socket."""
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"linkemu exited with {self.proc.returncode}: {self.log.read_text()[-1500:]}")
            try:
                self.set()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"linkemu did not answer within {timeout:g} s: {self.log.read_text()[-1500:]}")

    def set(self, **params: Any) -> dict[str, Any]:
        """Change parameters (``delay_ms``, ``jitter_ms``, ``loss``, ``down``; ``reset`` forgets the lateness
        samples); returns the state, the counters and the lateness of recent held packets."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)  # a loaded machine: the emulator answers between packet batches
            s.connect(socket_address(self.control))
            s.sendall(json.dumps(params).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("linkemu closed the control connection")
                data += chunk
        reply = json.loads(data)
        if not reply.get("ok"):
            raise ValueError(reply.get("error"))
        return reply

    def stats(self) -> dict[str, Any]:
        return self.set()

    def stop(self) -> None:
        """End the emulator (its TUN devices go with it); safe to call twice."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def netem_available() -> bool:
    """Whether this kernel can add a netem qdisc (tried on a dummy-free scratch namespace's loopback)."""
    ns = f"dzne{os.getpid() % 100000}"
    try:
        if subprocess.run(["ip", "netns", "add", ns], capture_output=True, timeout=20).returncode != 0:
            return False
        out = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                              "delay", "1ms"], capture_output=True, timeout=20)
        return out.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


# -- its floor -----------------------------------------------------------------------------------------


PROBE = r"""
import socket, sys, time, json
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "echo":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((host, port))
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((host, port)); t.listen(1)
    print("ready", flush=True)
    u.settimeout(60)
    while True:
        data, peer = u.recvfrom(2048)
        if data == b"tcp":
            u.sendto(b"ok", peer)
            break
        u.sendto(data, peer)
    c, _ = t.accept()
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        n += len(b)
    c.sendall(str(n).encode()); c.close()
else:
    rounds, nbytes = int(sys.argv[4]), int(sys.argv[5])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
    rtts = []
    for i in range(rounds):
        t0 = time.perf_counter(); u.sendto(b"x" * 32, (host, port))
        try:
            u.recvfrom(2048)
        except socket.timeout:
            continue
        rtts.append(time.perf_counter() - t0)
    u.sendto(b"tcp", (host, port)); u.recvfrom(16)
    time.sleep(0.2)
    c = socket.create_connection((host, port)); buf = b"\0" * (1 << 20)
    t0 = time.perf_counter(); sent = 0
    while sent < nbytes:
        c.sendall(buf); sent += len(buf)
    c.shutdown(socket.SHUT_WR); got = int(c.recv(64)); dt = time.perf_counter() - t0
    rtts.sort()
    print(json.dumps({"udp_rtt_p50_us": rtts[len(rtts) // 2] * 1e6, "udp_rtt_p90_us": rtts[len(rtts) * 9 // 10] * 1e6,
                      "tcp_mbytes_per_s": got / dt / 1e6, "tcp_bytes": got}))
"""


def floor(opts: argparse.Namespace) -> int:
    """UDP round trip and TCP throughput between two namespaces: over a veth, then over the emulator.

    Its ``added_one_way_*`` are what the emulator adds one way beyond the veth and ``--delay-ms``.
    """
    tag = str(os.getpid() % 100000)
    result: dict[str, Any] = {"load_average": os.getloadavg(), "mtu": opts.mtu, "delay_ms": opts.delay_ms,
                              "realtime": opts.realtime}
    for kind in ("veth", "linkemu"):
        ns = (f"dzfa{tag}", f"dzfb{tag}")
        addr = ("10.233.7.1", "10.233.7.2")
        link = None
        try:
            for n in ns:
                ip("netns", "add", n)
            if kind == "veth":
                ip("link", "add", f"fva{tag}", "type", "veth", "peer", "name", f"fvb{tag}")
                for i in (0, 1):
                    ip("link", "set", ("fva", "fvb")[i] + tag, "netns", ns[i])
                    ip("-n", ns[i], "link", "set", ("fva", "fvb")[i] + tag, "mtu", str(opts.mtu))
                    ip("-n", ns[i], "addr", "add", f"{addr[i]}/30", "dev", ("fva", "fvb")[i] + tag)
                    ip("-n", ns[i], "link", "set", ("fva", "fvb")[i] + tag, "up")
                    ip("-n", ns[i], "link", "set", "lo", "up")
            else:
                link = Link(*ns, *addr, tag=tag, workdir=Path("/tmp"), mtu=opts.mtu, delay_ms=opts.delay_ms,
                            realtime=opts.realtime).start()
            result[kind] = {}
            # the round trips alone first (the emulator's lateness then is what one packet meets),
            # then the TCP flood (packets wait behind each other: the emulator's packet rate)
            for phase, rounds, nbytes in (("udp", opts.rounds, 0), ("tcp", 10, opts.mbytes * 1_000_000)):
                if link:
                    link.set(reset=True)
                echo = subprocess.Popen(["ip", "netns", "exec", ns[1], sys.executable, "-c", PROBE, "echo", addr[1],
                                         "7001"], stdout=subprocess.PIPE, text=True)
                assert echo.stdout and echo.stdout.readline().strip() == "ready"
                out = subprocess.run(["ip", "netns", "exec", ns[0], sys.executable, "-c", PROBE, "ping", addr[1],
                                      "7001", str(rounds), str(nbytes)], capture_output=True, text=True, timeout=300)
                echo.wait(30)
                if out.returncode != 0:
                    result[kind][f"{phase}_error"] = out.stderr[-800:]
                    continue
                got = json.loads(out.stdout)
                keep = ("udp_rtt_p50_us", "udp_rtt_p90_us") if phase == "udp" else ("tcp_mbytes_per_s", "tcp_bytes")
                result[kind].update({k: got[k] for k in keep})
                if link:
                    st = link.stats()
                    result[kind].update({f"{phase}_{k}": v for k, v in st.items() if k.startswith("late_")})
                    if phase == "tcp":
                        seconds = got["tcp_bytes"] / max(got["tcp_mbytes_per_s"], 1e-9) / 1e6
                        result[kind]["packets_per_s"] = round(sum(st["sent"]) / seconds)
        finally:
            if link:
                link.stop()
            for n in ns:
                subprocess.run(["ip", "netns", "pids", n], capture_output=True)
                subprocess.run(["ip", "netns", "del", n], capture_output=True)
    for key in ("udp_rtt_p50_us", "udp_rtt_p90_us"):
        if key in result.get("veth", {}) and key in result.get("linkemu", {}):
            # what the emulator adds one way beyond the veth and the delay it was asked for
            added = (result["linkemu"][key] - result["veth"][key]) / 2 - opts.delay_ms * 1000
            result[f"added_one_way_{key[8:11]}_us"] = round(added, 1)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the link (as root)")
    for side in ("a", "b"):
        s.add_argument(f"--ns-{side}", required=True, help=f"network namespace of side {side} (must exist)")
        s.add_argument(f"--dev-{side}", required=True, help="TUN device name to make (at most 15 characters)")
        s.add_argument(f"--addr-{side}", required=True, help="IPv4 address of that side")
    s.add_argument("--prefix", type=int, default=30)
    s.add_argument("--mtu", type=int, default=1500)
    s.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay, each direction")
    s.add_argument("--jitter-ms", type=float, default=0.0, help="uniform +- jitter (packets may then reorder)")
    s.add_argument("--loss", type=float, default=0.0, help="probability a packet is dropped, each direction")
    s.add_argument("--limit", type=int, default=100000, help="packets held per direction before dropping")
    s.add_argument("--down", action="store_true", help="start with the link down")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--realtime", action="store_true", help="SCHED_FIFO priority 1: delays hold under load")
    s.add_argument("--nice", type=int, default=-10, help="niceness increment (root may raise its priority)")
    s.add_argument("--control", required=True,
                   help="Unix socket for JSON requests (see Link.set); @NAME for an abstract one")
    f = sub.add_parser("floor", help="measure the emulator against a veth (as root)")
    f.add_argument("--mtu", type=int, default=1500)
    f.add_argument("--rounds", type=int, default=2000)
    f.add_argument("--mbytes", type=int, default=200)
    f.add_argument("--delay-ms", type=float, default=0.0, help="the emulator's delay (its excess is reported)")
    f.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="run the emulator without SCHED_FIFO priority (as a loaded machine would)")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        print("linkemu needs root (TUN devices, network namespaces)", file=sys.stderr)
        return 2
    return serve(opts) if opts.cmd == "serve" else floor(opts)


if __name__ == "__main__":
    sys.exit(main())
