"""Starting one node process: its argv, its environment, the process record, its stdout publisher.

Processes start with ``subprocess`` (never ``fork``: the supervisor has a Zenoh session
open), in a new session of their own so a whole process tree can be stopped, with the
node's CPU affinity inherited from its first instruction.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import zenoh

from dora_zenoh import settings
from dora_zenoh.errors import NodeStartError
from dora_zenoh.tuning.affinity import inherited_by_children
from dora_zenoh.wire import codec as wire
from dora_zenoh.wire import keys, zconfig
from dora_zenoh.wire.contract import block_readers_by_output, node_config

if TYPE_CHECKING:
    from dora_zenoh.descriptor import Descriptor, ResolvedNode
    from dora_zenoh.supervision.forkserver import ForkedProcess, ForkServer
    from dora_zenoh.supervision.logfile import NodeLog
    from dora_zenoh.supervision.topology import Links
    from dora_zenoh.wire.contract import RunnerIdentity

SHIM_DIR = str(Path(__file__).resolve().parents[1] / "_shim")
STDERR_TAIL = 15  # stderr lines kept per node for the run's summary


class NodeProcess:
    """A spawned node process and what the supervisor knows of it."""

    def __init__(self, node: ResolvedNode, popen: subprocess.Popen | ForkedProcess, log: NodeLog) -> None:
        self.node = node
        self.popen = popen
        try:
            self.create_time = psutil.Process(popen.pid).create_time()
        except psutil.NoSuchProcess:  # a forked node its zygote reaped already: nothing left to stop
            self.create_time = time.time()
        self.log = log
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.pumps: list[threading.Thread] = []
        # "terminated" (asked to stop) | "killed" (ignored STOP) | "forced" (killed on request)
        self.stop_action: str | None = None
        self.exited_token: Any = None
        self.supervision_lost: str | None = None  # its LOST_TAG line, if it stopped for that
        self.close_failed: str | None = None  # its CLOSE_FAILED_TAG line: Zenoh did not close cleanly
        self.sent_file: str | None = None  # where it keeps its sent counts (wire.tally), if anywhere
        self.log_closing = False  # its log's close is queued after its last lines (NodeLogs.close_log)
        self.noticed = False  # its end-of-stream notice arrived
        # its liveliness token was seen: it uses the node API and hears STOP (its token goes as
        # it leaves, while its process may still be closing)
        self.joined = False


def command_for(node: ResolvedNode) -> list[str]:
    """The argv of a node process (an operator runtime is this package's own module)."""
    if node.kind == "runtime":
        return [sys.executable, "-u", "-m", "dora_zenoh.operators.runtime"]
    assert node.command, node.id
    return list(node.command)


def base_env(endpoint: str, secret: Path | None = None) -> dict[str, str]:
    """The environment every process of the run shares: ours, plus the ``dora`` shim on the
    path, unbuffered Python output and the Zenoh endpoint to connect to. ``secret``: a closed
    run's credentials file (:mod:`dora_zenoh.wire.auth`), by path, never its contents: every
    session a node opens presents them (:func:`dora_zenoh.wire.zconfig.peer_config`)."""
    env = zconfig.child_environ(os.environ)
    path = [SHIM_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["PYTHONUNBUFFERED"] = "1"
    env[zconfig.ENDPOINT_ENV] = endpoint
    if secret is not None:
        env[settings.SECRET_FILE.name] = str(secret)
    return env


def node_env(base: dict[str, str], desc: Descriptor, dataflow: str, node: ResolvedNode, node_endpoint: str,
             restart: bool = False, hot_reload: bool = False, secret: str | None = None,
             runner_zid: str | None = None, extra_readers: tuple[str, ...] = (),
             runner: RunnerIdentity | None = None, links: Links | None = None,
             dataflow_uuid: str | None = None, restart_count: int = 0, supervised: bool = True,
             resume_seqs: dict[str, int] | None = None, start_gate: bool = False
             ) -> dict[str, str]:
    """A node's environment: ``base``, the YAML's ``env``, its node config (JSON), and the
    variables dora-rs sets in every node (``DORA_NODE_ID``, ``DORA_NODE_CONFIG``,
    ``DORA_RUN_PARENT_PID``), which published dora nodes test for.

    ``secret`` (the run's, see docs/guarantees.md) travels only here, in the environment
    of the processes the runner starts; ``runner_zid`` is the runner's Zenoh session id.
    ``extra_readers``: ids that read every output although the YAML does not say so (a
    ``run --record`` recorder), so the node's start barrier waits for them too.
    ``runner``: the supervising process (a paused runner is not a dead one, see
    ``node.supervisor``); ``links``: the node's place in the link plan (``topology``).
    ``supervised=False``: the node does not stop when the dataflow's runner token goes (one
    machine's part of a multi-machine dataflow: its reaper, not a token, ends it with its
    supervisor; Zenoh withdrew that shared token spuriously after a network partition healed).
    ``start_gate``: the runner opens a start gate (supervision.startgate) that a node started
    with the dataflow waits for.
    """
    env = dict(base)
    env.update(node.env)
    # Started with the dataflow, behind the start barrier: it hears every message its
    # sources send, from sequence number 0 (a restarted node joins them midway).
    cfg = node_config(desc, dataflow, node, node_endpoint, supervised=supervised, fresh_start=not restart,
                      secret=secret,
                      runner_zid=runner_zid, runner=runner,
                      listen=links.listen if links else None, upstreams=links.upstreams if links else None,
                      dataflow_uuid=dataflow_uuid, restart_count=restart_count, resume_seqs=resume_seqs,
                      start_gate=start_gate and not restart)
    if extra_readers:
        readers = {o: list(cfg.readers.get(o, [])) + list(extra_readers) for o in cfg.outputs}
        cfg = dataclasses.replace(cfg, readers=readers)
    zconfig.tune_node_env(env, any(i.blocks for i in cfg.inputs.values()), nodes=len(desc.nodes),
                          replayed_output=bool(cfg.replay_outputs))
    env[settings.NODE_CONFIG.name] = cfg.to_json()
    env[settings.NODE_ID.name] = node.id
    dora_config = {"node_id": node.id} if dataflow_uuid is None else {"dataflow_id": dataflow_uuid,
                                                                       "node_id": node.id}
    env[settings.DORA_NODE_CONFIG.name] = json.dumps(dora_config)
    env[settings.RUN_PARENT_PID.name] = str(os.getpid())
    if hot_reload and node.kind == "runtime":
        env[settings.HOT_RELOAD.name] = "1"
    return env


def start_process(node: ResolvedNode, cwd: Path, env: dict[str, str], log: NodeLog,
                  forkserver: ForkServer | None = None) -> NodeProcess:
    """Start the node's process (stdout and stderr piped, for the pumps). Closes ``log`` and
    raises NodeStartError if it cannot be started. ``forkserver``: fork it from there when
    that is the same as starting it (see :mod:`.forkserver`)."""
    argv = command_for(node)
    if forkserver is not None:
        forked = forkserver.start(argv, str(cwd), env, node.cpu_affinity)
        if forked is not None:
            return NodeProcess(node, forked, log)
    try:
        with inherited_by_children(node.cpu_affinity):  # the node's every thread, from its start
            popen = subprocess.Popen(argv, cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        log.close()
        raise NodeStartError(f"node '{node.id}': could not start {argv[0]}: {exc}") from exc
    return NodeProcess(node, popen, log)


class StdoutPublisher:
    """Publishes a node's stdout lines as its output ``send_stdout_as`` (the runner does it:
    the node only prints), then its end-of-stream notice with the count."""

    def __init__(self, session: zenoh.Session, desc: Descriptor, dataflow: str, node: ResolvedNode,
                 before_first: Callable[[], None], secret: str | None = None) -> None:
        self.session = session
        self.secret = secret  # signs the end-of-stream notice, as the node's own would be
        self.node = node
        self.eos_key = keys.eos_key(desc.prefix, dataflow, node.id)
        # BLOCK only for block readers, as a node's own outputs: a stalled drop_oldest reader held
        # the node's every print ~5 s (4,987 ms, a helper's runs) through this publisher
        blocking = bool(block_readers_by_output(desc, node.id).get(node.send_stdout_as or ""))
        self.publisher = session.declare_publisher(
            keys.data_key(desc.prefix, dataflow, f"{node.id}/{node.send_stdout_as}"), encoding=wire.ENC_TEXT,
            congestion_control=zenoh.CongestionControl.BLOCK if blocking else zenoh.CongestionControl.DROP)
        self.before_first = before_first  # waits (bounded) until every reader is subscribed
        self.seq = 0

    @staticmethod
    def wanted(node: ResolvedNode) -> bool:
        """A runtime publishes its operators' lines itself, as ordinary outputs."""
        return bool(node.send_stdout_as) and node.kind != "runtime"

    def put(self, line: str) -> None:
        if self.seq == 0:
            self.before_first()
        self.publisher.put(line.encode(), attachment=wire.attachment(self.seq, time.time_ns(), None))
        self.seq += 1

    def finish(self) -> None:
        """The node closed its stdout: tell its readers how many lines it sent."""
        body = json.dumps({"node": self.node.id, "outputs": {self.node.send_stdout_as: self.seq}}).encode()
        try:
            self.session.put(self.eos_key, body, attachment=wire.sign(self.secret, body) if self.secret else None,
                             congestion_control=zenoh.CongestionControl.BLOCK)
        except zenoh.ZError:  # the run ended first (a child of the node held its stdout): no reader is left
            pass


def recorder_env(secret: Path | None) -> dict[str, str]:
    """The recorder's environment: ours, plus a closed run's credentials (it is a reader and
    announces a token, so it needs the run's own, not an observer's)."""
    env = zconfig.child_environ(os.environ)
    if secret is not None:
        env[settings.SECRET_FILE.name] = str(secret)
    return env


def recorder_command(dataflow: str, path: Path, endpoint: str, prefix: str, compression: str = "zstd") -> list[str]:
    """The argv of the recorder of ``run --record`` / ``start --record``: ``dora-zenoh record`` as a
    reader of every output (see ``dora_zenoh.record.recorder``), in a process of its own."""
    return [sys.executable, "-m", "dora_zenoh", "record", dataflow, "-o", str(path), "--endpoint", endpoint,
            "--prefix", prefix, "--as-reader", keys.RECORDER_NODE, "--compression", compression]
