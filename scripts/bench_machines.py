"""Cross-machine latency and throughput: dora-zenoh (coordinator + a daemon per machine) vs plain zenoh-python.

Two "machines" are Linux network namespaces (needs root). The link between them is a veth
pair, or, with ``--delay-ms``, a veth with a netem delay on each side when the kernel has
netem, else scripts/linkemu.py (a TUN device in each namespace joined by a user-space
emulator; its own floor is in docs/machines.md); ``--link`` forces one, and the output and
JSON say which was used, with the load average. Latency: ping on machine a, pong on b,
one-way = round trip / 2. Throughput: a windowed flood from a to b (each window
acknowledged, nothing may be lost; dora-zenoh's readers are `queue_policy: block`, see --queue-policy). Both
runtimes use the same link, plain TCP, and no shared memory (the namespaces share this
host's /dev/shm, which two real machines would not).

  sudo .venv/bin/python scripts/bench_machines.py --repeat 5 --cpus 0,1     # today's table in docs/machines.md
  sudo .venv/bin/python scripts/bench_machines.py --zenoh-advanced           # zenoh with dora-zenoh's replay cache
  sudo .venv/bin/python scripts/bench_machines.py --delay-ms 1 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODES = ROOT / "scripts" / "bench_nodes"
FLOOR = ROOT / "scripts" / "zenoh_floor.py"
FLOOD = ROOT / "scripts" / "zenoh_flood.py"
sys.path.insert(0, str(ROOT / "scripts"))
import linkemu  # noqa: E402 (a script next to this one)
from zenoh_floor import READERS, READERS_HELP  # noqa: E402 (same)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


class Net:
    """Namespaces a and b joined by ``link``: "veth", "netem" (veth + netem delay) or "emu" (linkemu)."""

    def __init__(self, link: str, delay_ms: float, mtu: int, work: Path, cpus: dict[str, str] | None = None) -> None:
        self.cpus = cpus or {}  # machine -> CPU list its processes are pinned to (taskset)
        tag = os.getpid() % 100000
        self.ns = {"a": f"dzba{tag}", "b": f"dzbb{tag}"}
        self.dev = {"a": f"dba{tag}", "b": f"dbb{tag}"}
        n = 20 + os.getpid() % 200
        self.addr = {"a": f"10.231.{n}.1", "b": f"10.231.{n}.2"}
        self.link, self.delay_ms, self.mtu = link, delay_ms, mtu
        self.emu = linkemu.Link(self.ns["a"], self.ns["b"], self.addr["a"], self.addr["b"], tag=str(tag),
                                workdir=work, mtu=mtu, delay_ms=delay_ms) if link == "emu" else None

    def __enter__(self) -> Net:
        try:
            self._make()
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            self.__exit__()
            detail = (f"{' '.join(exc.cmd)}: {exc.stderr.decode().strip()}"
                      if isinstance(exc, subprocess.CalledProcessError) else str(exc))
            raise SystemExit(f"cannot make the network ({detail})") from None
        return self

    def _make(self) -> None:
        for m in "ab":
            ip("netns", "add", self.ns[m])
        if self.emu:
            self.emu.start()
            return
        ip("link", "add", self.dev["a"], "type", "veth", "peer", "name", self.dev["b"])
        for m in "ab":
            ip("link", "set", self.dev[m], "netns", self.ns[m])
            ip("-n", self.ns[m], "link", "set", self.dev[m], "mtu", str(self.mtu))
            ip("-n", self.ns[m], "addr", "add", f"{self.addr[m]}/30", "dev", self.dev[m])
            ip("-n", self.ns[m], "link", "set", self.dev[m], "up")
            ip("-n", self.ns[m], "link", "set", "lo", "up")
            if self.link == "netem":
                subprocess.run(["ip", "netns", "exec", self.ns[m], "tc", "qdisc", "add", "dev", self.dev[m], "root",
                                "netem", "delay", f"{self.delay_ms}ms"], check=True, capture_output=True)

    def __exit__(self, *exc: object) -> None:
        for m in "ab":
            out = subprocess.run(["ip", "netns", "pids", self.ns[m]], capture_output=True, text=True).stdout
            for pid in out.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.emu:
            self.emu.stop()
        for m in "ab":
            subprocess.run(["ip", "netns", "del", self.ns[m]], capture_output=True)

    def cmd(self, m: str, argv: list[str]) -> list[str]:
        """``argv`` run inside machine ``m`` (on its CPUs when pinned: a daemon's nodes inherit them)."""
        pin = ["taskset", "-c", self.cpus[m]] if m in self.cpus else []
        return ["ip", "netns", "exec", self.ns[m], *pin, *argv]

    def popen(self, m: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(m, argv), env=env, cwd=cwd,
                                stdout=open(log, "a"), stderr=subprocess.STDOUT)  # noqa: SIM115

    def run(self, m: str, argv: list[str], env: dict[str, str], cwd: Path, timeout: float
            ) -> subprocess.CompletedProcess:
        """Run to completion; past ``timeout`` it is killed and returns 124 (a hung case is an error row)."""
        cmd = self.cmd(m, argv)
        try:
            return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {timeout:g} s")


def wait_for(cond: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def plain_zenoh(net: Net, opts: argparse.Namespace, work: Path) -> dict:
    env = dict(os.environ)
    report: dict = {"latency": {}, "throughput": {}}
    log = work / "floor.log"
    adv = ["--advanced"] if opts.zenoh_advanced else []
    reader = ["--reader", opts.zenoh_reader]
    if sizes(opts):
        ready, result = work / "ready", work / "floor.json"
        pong = net.popen("b", [sys.executable, str(FLOOR), "pong", "--host", net.addr["b"], "--port", "7555",
                               "--no-shm", "--ready-file", str(ready), "--max-seconds", "600", *adv, *reader],
                         env, log, work)
        try:
            if not wait_for(ready.exists, 30):
                return {"error": "pong did not start: " + log.read_text()[-1500:]}
            net.run("a", [sys.executable, str(FLOOR), "ping", "--host", net.addr["b"], "--port", "7555", "--no-shm",
                          "--sizes", opts.sizes, "--rounds", str(opts.rounds), "--warmup", str(opts.warmup),
                          "--result", str(result), *adv, *reader], env, work, 600)
        finally:
            pong.terminate()
            pong.wait(10)
        report["latency"] = json.loads(result.read_text()) if result.exists() else {"error": log.read_text()[-1500:]}
    for i, spec in enumerate(specs(opts)):
        size, count, window = (int(x) for x in spec.split(":"))
        ready, rx_out, tx_out = work / f"rx{i}.ready", work / f"rx{i}.json", work / f"tx{i}.json"
        common = ["--host", net.addr["b"], "--port", str(7556 + i), "--size", str(size), "--window", str(window),
                  "--count", str(count), *adv]
        rx = net.popen("b", [sys.executable, str(FLOOD), "rx", *common, "--ready-file", str(ready),
                             "--result", str(rx_out), *reader], env, log, work)
        try:
            if wait_for(ready.exists, 30):
                net.run("a", [sys.executable, str(FLOOD), "tx", *common, "--result",
                              str(tx_out), *reader], env, work, 600)
            wait_for(lambda: rx.poll() is not None, 10)  # noqa: B023 (called here)
        finally:
            if rx.poll() is None:
                rx.terminate()
            rx.wait(10)
        report["throughput"][spec] = flood_result(tx_out, rx_out, log)
    return report


def flood_result(tx_out: Path, rx_out: Path, log: Path) -> dict:
    """The sender's figures, and ``lost`` = sent - received (a missing ack counts as one at least)."""
    if not tx_out.exists():
        return {"error": log.read_text()[-1500:]}
    r = json.loads(tx_out.read_text())
    if rx_out.exists():
        r["lost"] = r["sent"] - json.loads(rx_out.read_text())["received"]
    else:
        r["lost"] = r["sent"] - r["acknowledged"]
    if r["missing_ack_after"] is not None:
        r["lost"] = max(r["lost"], 1)
    return r


def specs(opts: argparse.Namespace) -> list[str]:
    return [s for s in opts.flood.split(",") if s]


def sizes(opts: argparse.Namespace) -> list[str]:
    """Latency's payload sizes ('' for none: floods only)."""
    return [s for s in opts.sizes.split(",") if s]


def dora_zenoh(net: Net, opts: argparse.Namespace, work: Path) -> dict:
    zconf = work / "zenoh.json5"
    zconf.write_text(json.dumps({"scouting": {"multicast": {"enabled": False}},
                                 "transport": {"shared_memory": {"enabled": False}}}))
    coordinator = f"tcp/{net.addr['a']}:{20000 + os.getpid() % 20000}"  # also names the control socket
    env = {**os.environ, "DORA_ZENOH_ZENOH_CONFIG": str(zconf), "DORA_ZENOH_ENDPOINT": coordinator,
           "DORA_ZENOH_INSECURE_NETWORK": "1", "DORA_ZENOH_SECURE": "0" if opts.open else "1"}
    dz = [sys.executable, "-m", "dora_zenoh"]
    log = work / "dz.log"
    net.popen("a", [*dz, "coordinator", "--endpoint", coordinator], env, log, work)
    if not wait_for(lambda: net.run("a", [*dz, "list"], env, work, 20).returncode == 0, 60):
        return {"error": "coordinator did not start: " + log.read_text()[-1500:]}
    for m in "ab":
        net.popen(m, [*dz, "daemon", "--machine-id", m, "--coordinator", coordinator, "--listen",
                      f"tcp/{net.addr[m]}:7448", "--insecure-tcp"], env, log, work)
    info = [sys.executable, "-c", "import json, os\nfrom dora_zenoh.supervision.client import Client\n"
            "with Client(os.environ['DORA_ZENOH_ENDPOINT']) as c: print(json.dumps(c.call('info')['daemons']))"]

    def joined() -> bool:
        out = net.run("a", info, env, work, 60)
        return out.returncode == 0 and set(json.loads(out.stdout)) >= {"a", "b"}

    if not wait_for(joined, 60):
        return {"error": "the daemons did not join: " + log.read_text()[-1500:]}
    report: dict = {"latency": {}, "throughput": {}}
    # logs and results change while `start` ships the folder to b (docs/machines.md, Files and builds)
    (work / ".dora-zenoh-ignore").write_text("*.log\n*.json\n*.ready\n*.sock\n")
    result = work / "dz.json"
    (work / "dataflow.yml").write_text(textwrap.dedent(f"""
        nodes:
          - id: ping
            path: {NODES / 'ping.py'}
            deploy: {{machine: a}}
            inputs: {{pong: {{source: pong/pong, queue_policy: {opts.queue_policy}}}}}
            outputs: [ping, done]
            env: {{SIZES: "{opts.sizes}", ROUNDS: "{opts.rounds}", WARMUP: "{opts.warmup}", RESULT_FILE: "{result}"}}
          - id: pong
            path: {NODES / 'pong.py'}
            deploy: {{machine: b}}
            inputs: {{ping: {{source: ping/ping, queue_policy: {opts.queue_policy}}}, done: ping/done}}
            outputs: [pong]
    """))
    if sizes(opts):
        out = run_flow(net, work / "dataflow.yml", "xbench", result, env, work)
        report["latency"] = (json.loads(result.read_text()) if result.exists()
                             else {"error": out.stderr[-1200:] + log.read_text()[-600:]})
    for i, spec in enumerate(specs(opts)):
        size, count, window = (int(x) for x in spec.split(":"))
        tx_out, rx_out = work / f"dztx{i}.json", work / f"dzrx{i}.json"
        yml = work / f"flood{i}.yml"
        yml.write_text(textwrap.dedent(f"""
            nodes:
              - id: tx
                path: {NODES / 'flood_tx.py'}
                deploy: {{machine: a}}
                inputs: {{ack: rx/ack}}
                outputs: [data, done]
                env: {{RESULT_FILE: "{tx_out}", SIZE: "{size}", COUNT: "{count}", WINDOW: "{window}", ACK_TIMEOUT: "10"}}
              - id: rx
                path: {NODES / 'flood_rx.py'}
                deploy: {{machine: b}}
                inputs:
                  data: {{source: tx/data, queue_size: {window}, queue_policy: {opts.queue_policy}}}
                  done: tx/done
                outputs: [ack]
                env: {{RX_RESULT_FILE: "{rx_out}", SIZE: "{size}", WINDOW: "{window}"}}
        """))
        out = run_flow(net, yml, f"xflood{i}", tx_out, env, work)
        report["throughput"][spec] = flood_result(tx_out, rx_out, log)
        if out.returncode:
            report["throughput"][spec]["start"] = out.stderr[-600:]
    return report


def run_flow(net: Net, yml: Path, name: str, result: Path, env: dict[str, str], work: Path,
             timeout: float = 600, grace: float = 30) -> subprocess.CompletedProcess:
    """``start`` a dataflow in the foreground; if it has not ended ``grace`` s after ``result``
    appeared (a reader on the other machine still waiting: see docs/machines.md, Not yet), stop it
    and say so in the returned stderr, instead of waiting for ``timeout``."""
    dz = [sys.executable, "-m", "dora_zenoh"]
    log = work / f"start-{name}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(net.cmd("a", [*dz, "start", str(yml), "--name", name, "--fail-fast"]), env=env, cwd=work, stdout=f, stderr=subprocess.STDOUT)
    note = ""
    if not wait_for(lambda: proc.poll() is not None or result.exists(), timeout):
        note = f"timed out after {timeout:g} s; "
    elif proc.poll() is None and not wait_for(lambda: proc.poll() is not None, grace):
        note = f"still running {grace:g} s after its result: stopped; "
    if proc.poll() is None:
        net.run("a", [*dz, "stop", name], env, work, 120)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return subprocess.CompletedProcess(proc.args, proc.returncode if not note else 124, "",
                                       note + log.read_text()[-1200:])


RUNTIMES = {"zenoh-python": plain_zenoh, "dora-zenoh": dora_zenoh}


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def _spread(xs: list[float], fmt: str) -> str:
    """The median, and the range when there are several runs."""
    if not xs:
        return "error"
    mid = format(_median(xs), fmt)
    return mid if len(xs) == 1 else f"{mid} ({format(min(xs), fmt)}-{format(max(xs), fmt)})"


def table(runs: list[dict], opts: argparse.Namespace) -> str:
    """Medians over the runs; a ratio is dora-zenoh's run against the zenoh-python run made with
    it (slower = above 1), median and range over the runs."""
    def lat(run: dict, name: str, size: str) -> dict | None:
        r = run[name].get("latency", {}).get(size)
        return r if isinstance(r, dict) and "one_way_p50_us" in r else None

    def tput(run: dict, name: str, spec: str) -> dict | None:
        r = run[name].get("throughput", {}).get(spec)
        return r if isinstance(r, dict) and r.get("msgs_per_s") else None

    lines = [f"one-way latency p50 / p90 in µs (median of runs)\n{'size':>9}  {'zenoh-python':>20}  "
             f"{'dora-zenoh':>20}  ratio(p50)"] if sizes(opts) else []
    for size in sizes(opts):
        cells = []
        for name in RUNTIMES:
            rs = [r for r in (lat(run, name, size) for run in runs) if r]
            cells.append(f"{_median([r['one_way_p50_us'] for r in rs]):.0f} / "
                         f"{_median([r['one_way_p90_us'] for r in rs]):.0f}" if rs else "error")
        ratios = [d["one_way_p50_us"] / z["one_way_p50_us"] for z, d in
                  ((lat(run, "zenoh-python", size), lat(run, "dora-zenoh", size)) for run in runs) if z and d]
        lines.append(f"{size:>9}  {cells[0]:>20}  {cells[1]:>20}  {_spread(ratios, '.2f') if ratios else '-'}")
    if specs(opts):
        lines.append(f"throughput a -> b in msg/s, acknowledged windows (median of runs; lost in all)\n"
                     f"{'SIZE:COUNT:WINDOW':>18}  {'zenoh-python':>22}  {'dora-zenoh':>22}  ratio")
    for spec in specs(opts):
        cells = []
        for name in RUNTIMES:
            rs = [r for r in (tput(run, name, spec) for run in runs) if r]
            cells.append(f"{_median([r['msgs_per_s'] for r in rs]):.0f}/s ({sum(r['lost'] for r in rs)})"
                         if rs else "error")
        ratios = [z["msgs_per_s"] / d["msgs_per_s"] for z, d in
                  ((tput(run, "zenoh-python", spec), tput(run, "dora-zenoh", spec)) for run in runs) if z and d]
        lines.append(f"{spec:>18}  {cells[0]:>22}  {cells[1]:>22}  {_spread(ratios, '.2f') if ratios else '-'}")
    return "\n".join(lines)


def errors(r: dict) -> list[str]:
    """What went wrong in one runtime's run: its own error and each case's."""
    found = [r.get("error")]
    for part in ("latency", "throughput"):
        found += [v.get(k) for v in r.get(part, {}).values() if isinstance(v, dict) for k in ("error", "start")]
        found += [r.get(part, {}).get("error")]
    return [f"{e}" for e in found if e]


def choose_link(opts: argparse.Namespace) -> str:
    """veth without delay; with one, netem when this kernel has it, else the user-space emulator."""
    if opts.link != "auto":
        return opts.link
    if not opts.delay_ms:
        return "veth"
    return "netem" if linkemu.netem_available() else "emu"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="8,65536,4194304", help="latency: payload sizes in bytes ('' for none)")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--flood", default="8:20000:100,65536:2000:50,1048576:1000:10",
                    help="throughput cases SIZE:COUNT:WINDOW, comma separated ('' for none)")
    ap.add_argument("--queue-policy", choices=["block", "drop_oldest"], default="block",
                    help="dora-zenoh's readers (block, as plain zenoh's BLOCK publishers: nothing may be lost; "
                         "across machines the sender then keeps messages for replay after an outage)")
    ap.add_argument("--zenoh-advanced", action="store_true",
                    help="plain zenoh uses Zenoh's advanced publisher (its cache bounded as dora-zenoh's replay "
                         "cache) and subscriber: what dora-zenoh's block readers across machines cost in Zenoh itself")
    ap.add_argument("--zenoh-reader", choices=READERS, default="callback",
                    help="zenoh-python's pong and flood receiver (and, with events, ping): " + READERS_HELP)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay added on each direction of the link")
    ap.add_argument("--link", choices=["auto", "veth", "netem", "emu"], default="auto",
                    help="auto: veth, or with --delay-ms netem if the kernel has it, else linkemu")
    ap.add_argument("--mtu", type=int, default=1500, help="MTU of both ends of the link")
    ap.add_argument("--only", choices=["zenoh-python", "dora-zenoh"],
                    help="run one runtime only (to compare settings of one, alternating runs)")
    ap.add_argument("--open", action="store_true",
                    help="dora-zenoh's dataflows open (`start --open`); default closed, as `start`'s")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each runtime, taking turns; the table gives medians and the ratios' range")
    ap.add_argument("--cpus", metavar="A,B",
                    help="pin machine a's processes to CPU A and b's to B (taskset; A:B for CPU lists), for both runtimes: "
                         "on a small VM where the scheduler puts ping and pong decides half the latency")
    ap.add_argument("--json", help="also write the full report here (every run)")
    opts = ap.parse_args()
    if opts.repeat < 1:
        ap.error(f"--repeat {opts.repeat}: at least 1 run of each runtime")
    # a `kill` or a closed terminal ends it as Ctrl-C does: through Net's clean-up (a killed bench
    # left its namespaces and their processes behind)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    link = choose_link(opts)
    if link == "veth" and opts.delay_ms:
        print("--link veth adds no delay: use netem or emu", file=sys.stderr)
        return 2
    cpus = None
    if opts.cpus:
        parts = opts.cpus.split(":" if ":" in opts.cpus else ",")
        if len(parts) != 2 or not all(parts):
            ap.error(f"--cpus {opts.cpus}: give machine a's CPU and b's, e.g. 0,1 (or 0-1:2-3 for CPU lists)")
        cpus = dict(zip("ab", parts, strict=True))
    load_before = os.getloadavg()
    report: dict = {"cpus": cpus, "link": link, "delay_ms": opts.delay_ms, "mtu": opts.mtu, "queue_policy": opts.queue_policy,
                    "zenoh_reader": opts.zenoh_reader,
                    "closed": not opts.open,
                    "load_average_before": load_before}
    names = [n for n in RUNTIMES if not opts.only or n == opts.only]
    runs: list[dict] = []
    for _ in range(opts.repeat):  # the runtimes take turns, so a drift in machine speed hits both alike
        run: dict = {n: {} for n in RUNTIMES}
        for name in names:
            with tempfile.TemporaryDirectory(prefix="dz-xbench-") as tmp, \
                    Net(link, opts.delay_ms, opts.mtu, Path(tmp), cpus) as net:
                run[name] = RUNTIMES[name](net, opts, Path(tmp))
                if net.emu:
                    run.setdefault("linkemu_counters", {})[name] = net.emu.stats()
        runs.append(run)
    report["runs"] = runs
    report["load_average_after"] = os.getloadavg()
    how = {"veth": "a veth pair", "netem": f"a veth pair with netem delay {opts.delay_ms:g} ms each way",
           "emu": f"scripts/linkemu.py, delay {opts.delay_ms:g} ms each way"}[link]
    print(f"link: {how}, MTU {opts.mtu}, no SHM, dora-zenoh readers {opts.queue_policy}, "
          f"{'open' if opts.open else 'closed'} dataflows; zenoh-python {'advanced' if opts.zenoh_advanced else 'plain'} "
          f"publishers/subscribers, readers: {opts.zenoh_reader}; load average {load_before[0]:.1f} before, "
          f"{report['load_average_after'][0]:.1f} after (1 min); {opts.repeat} run(s) of each, taking turns"
          + (f"; a on CPU {cpus['a']}, b on CPU {cpus['b']}" if cpus else ""))
    print(table(runs, opts))
    for run in runs:
        for name in names:
            for e in errors(run[name]):
                print(f"{name}: {e}", file=sys.stderr)
    if opts.json:
        Path(opts.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
