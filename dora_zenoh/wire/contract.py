"""The typed contract between a runner and a node process: :class:`NodeConfig`.

The runner builds it from the descriptor (:func:`node_config`) and hands it to the node
as JSON: in ``$DORA_ZENOH_NODE_CONFIG``, or over Zenoh to a dynamic node. A ROS-like
node builds one itself (:mod:`dora_zenoh.node.adhoc`). JSON, and plain dataclasses
rather than pydantic, so that a node needs neither pydantic nor the YAML file to start:
start-up time is part of the product.

:meth:`NodeConfig.from_json` checks every field and raises a :class:`NodeConfigError`
that names the bad one; fields it does not know are ignored, so a node of a slightly
older dora-zenoh can still join a newer runner.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dora_zenoh import settings
from dora_zenoh.descriptor.limits import MAX_QUEUE_SIZE
from dora_zenoh.errors import NodeConfigError
from dora_zenoh.wire import keys

if TYPE_CHECKING:
    from dora_zenoh.descriptor.model import Descriptor, OperatorSpec, ResolvedInput, ResolvedNode

QUEUE_POLICIES = ("drop_oldest", "block")
DEFAULT_QUEUE_SIZE = 10
DEFAULT_BARRIER_TIMEOUT = 30.0
# Start-up is bound by starting the node processes (~0.2 s of CPU each, mostly imports: see
# docs/scale-and-logs.md): on a shared 2-core machine some readers of a 200-node fan-out were not
# subscribed after 30 s, and their source, giving up on its barrier, sent its first messages
# without them. So a runner's nodes wait this much longer per node of the dataflow.
BARRIER_PER_NODE = 0.5


@dataclass(frozen=True)
class InputConfig:
    """One input as a node sees it: a timer (``timer_ns``) or the key of another node's output.

    ``stdout``: the source publishes its stdout lines there (they may outlive its
    liveliness token). ``restartable``: the source may end and come back, so only the
    runner's final ``exited`` token closes this input. ``recover``: a ``queue_policy: block``
    input whose source runs on another machine: it is read with Zenoh's advanced subscriber,
    which recovers from the sender's replay cache what a link outage lost (see
    :mod:`dora_zenoh.node.replay`).
    """

    queue_size: int = DEFAULT_QUEUE_SIZE
    queue_policy: str = "drop_oldest"
    timer_ns: int | None = None
    key: str | None = None
    source_node: str | None = None
    source_output: str | None = None
    stdout: bool = False
    restartable: bool = False
    recover: bool = False

    @property
    def is_timer(self) -> bool:
        return self.timer_ns is not None

    @property
    def blocks(self) -> bool:
        """``queue_policy: block``: the source waits for room instead of dropping."""
        return self.queue_policy == "block"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"queue_size": self.queue_size, "queue_policy": self.queue_policy}
        if self.timer_ns is not None:
            data["timer_ns"] = self.timer_ns
            return data
        data.update(key=self.key, source_node=self.source_node, source_output=self.source_output,
                    stdout=self.stdout)
        if self.restartable:
            data["restartable"] = True
        if self.recover:
            data["recover"] = True
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> InputConfig:
        f = _Fields(data, where)
        queue_size = f.whole("queue_size", DEFAULT_QUEUE_SIZE, minimum=1, maximum=MAX_QUEUE_SIZE)
        queue_policy = f.text("queue_policy", "drop_oldest")
        if queue_policy not in QUEUE_POLICIES:
            raise f.error("queue_policy", f"should be one of {', '.join(QUEUE_POLICIES)}, not {queue_policy!r}")
        timer_ns = f.whole("timer_ns", None, minimum=1)
        if timer_ns is not None:
            return cls(queue_size, queue_policy, timer_ns)
        return cls(queue_size, queue_policy, None, f.text("key"), f.text("source_node"), f.text("source_output"),
                   f.flag("stdout", False), f.flag("restartable", False), f.flag("recover", False))


@dataclass(frozen=True)
class OperatorConfig:
    """One operator of a runtime node: its file and ids, without the node-level "opid/" prefix."""

    id: str
    python: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    send_stdout_as: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "python": self.python, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "send_stdout_as": self.send_stdout_as}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> OperatorConfig:
        f = _Fields(data, where)
        return cls(f.text("id"), f.text("python"), f.ids("inputs"), f.ids("outputs"),
                   f.text("send_stdout_as", None))


@dataclass(frozen=True)
class RunnerIdentity:
    """The process that supervises a node: which machine, which pid, started when.

    A node whose runner's liveliness token goes looks at this process before it stops:
    still there (``start`` in clock ticks since boot, so a reused pid does not count)
    means the runner is paused, not dead (see :mod:`dora_zenoh.node.supervisor`).
    """

    host: str
    pid: int
    start: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "start": self.start}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RunnerIdentity:
        f = _Fields(data, where)
        return cls(f.text("host"), f.whole("pid", minimum=1), f.whole("start", None, minimum=0))


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node process needs to join a dataflow.

    ``outputs`` maps an output id to its key; ``readers`` maps an output id to the nodes
    started with the dataflow that read it (what the start barrier waits for).
    ``supervised``: a runner watches this node (it stops when the runner goes).
    ``fresh_start``: started with the dataflow, so it hears its sources from sequence 0.
    ``descriptor``: the YAML's path (None for a ROS-like node). ``operators``: only for
    an operator runtime. ``runner``: the supervising process (None: not known, e.g. a
    coordinator of an older dora-zenoh).

    ``listen`` and ``upstreams``: the runner's link plan (``supervision.topology``): the
    node listens on ``listen`` and links only to the hub (``endpoint``) and to
    ``upstreams``, the listeners of the nodes it reads from, with gossip auto-connect
    off. ``listen`` None: no plan, the node listens on an ephemeral port and lets gossip
    link it to every peer.

    Trust (docs/guarantees.md): ``block_readers`` maps an output id to its readers with
    ``queue_policy: block``, the only ones that may hold this node back (None: not known,
    as for a ROS-like node, so every output blocks); an output no block reader reads is
    published with congestion control DROP. ``split_outputs``: outputs a block reader reads,
    published on ``keys.block_key`` for their block readers (see :func:`split_output`). ``secret``: the
    run's key that signs end-of-stream notices and stop requests (only in the environment
    of the processes the runner starts; never served over Zenoh). ``runner_zid``: the
    runner's Zenoh session id, the only one whose ``facts`` confirm an exited/stop token.
    ``dataflow_uuid``: this run's id, the same for every node of it
    (dora-rs's ``node.dataflow_id()``; None: the node derives one from the name).
    ``restart_count``: how many times the runner restarted this node before this process.
    ``replay_outputs``: outputs that a ``queue_policy: block`` reader on another machine reads:
    published with Zenoh's advanced publisher, which keeps the last messages for a reader
    to recover after a link outage (see :mod:`dora_zenoh.node.replay`).
    ``start_gate``: started with the dataflow by the runner ``runner_zid``: ``Node()`` returns once
    that runner says every node it started is ready (``keys.ready_token``, supervision.startgate).
    ``resume_seqs``: (a restarted node) per input, the last sequence number its previous
    process got (from that process's end-of-stream notice): what its sources sent while it
    restarted is counted as lost.
    ``machine``: the machine id ``deploy`` placed it on (None: not placed), which it reports as
    where it runs (tools on any machine then name it as the coordinator does).
    """

    dataflow: str
    node: str
    prefix: str
    endpoint: str
    descriptor: str | None = None
    supervised: bool = True
    inputs: dict[str, InputConfig] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    readers: dict[str, list[str]] = field(default_factory=dict)
    operators: list[OperatorConfig] = field(default_factory=list)
    fresh_start: bool = False
    barrier_timeout: float = DEFAULT_BARRIER_TIMEOUT
    block_readers: dict[str, list[str]] | None = None
    split_outputs: list[str] = field(default_factory=list)
    secret: str | None = None
    runner_zid: str | None = None
    runner: RunnerIdentity | None = None
    listen: str | None = None
    upstreams: list[str] = field(default_factory=list)
    dataflow_uuid: str | None = None
    restart_count: int = 0
    replay_outputs: list[str] = field(default_factory=list)
    resume_seqs: dict[str, int] = field(default_factory=dict)
    start_gate: bool = False
    machine: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "dataflow": self.dataflow, "node": self.node, "prefix": self.prefix, "endpoint": self.endpoint,
            "descriptor": self.descriptor, "supervised": self.supervised,
            "inputs": {i: spec.to_dict() for i, spec in self.inputs.items()},
            "outputs": dict(self.outputs),
            "readers": {o: list(r) for o, r in self.readers.items()},
            "fresh_start": self.fresh_start,
            "barrier_timeout": self.barrier_timeout,
            "restart_count": self.restart_count,
        }
        if self.dataflow_uuid is not None:
            data["dataflow_uuid"] = self.dataflow_uuid
        if self.operators:
            data["operators"] = [op.to_dict() for op in self.operators]
        if self.block_readers is not None:
            data["block_readers"] = {o: list(r) for o, r in self.block_readers.items()}
        if self.split_outputs:
            data["split_outputs"] = list(self.split_outputs)
        if self.secret is not None:
            data["secret"] = self.secret
        if self.runner_zid is not None:
            data["runner_zid"] = self.runner_zid
        if self.runner is not None:
            data["runner"] = self.runner.to_dict()
        if self.listen is not None:
            data["listen"] = self.listen
            data["upstreams"] = list(self.upstreams)
        if self.replay_outputs:
            data["replay_outputs"] = list(self.replay_outputs)
        if self.resume_seqs:
            data["resume_seqs"] = dict(self.resume_seqs)
        if self.start_gate:
            data["start_gate"] = True
        if self.machine is not None:
            data["machine"] = self.machine
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, where: str = "node configuration") -> NodeConfig:
        f = _Fields(data, where)
        inputs = {i: InputConfig.from_dict(spec, f"{where}: inputs.{i}")
                  for i, spec in f.mapping("inputs").items()}
        outputs = f.mapping("outputs")
        for out_id, key in outputs.items():
            if not isinstance(key, str):
                raise f.error(f"outputs.{out_id}", f"should be a key (text), not {key!r}")
        readers = f.node_lists("readers")
        ops = f.items("operators")
        runner = data.get("runner")
        return cls(f.text("dataflow"), f.text("node"), f.text("prefix"), f.text("endpoint"),
                   f.text("descriptor", None), f.flag("supervised", True), inputs, dict(outputs),
                   readers if readers is not None else {},
                   [OperatorConfig.from_dict(op, f"{where}: operators[{n}]") for n, op in enumerate(ops)],
                   f.flag("fresh_start", False), f.number("barrier_timeout", DEFAULT_BARRIER_TIMEOUT),
                   f.node_lists("block_readers", None), f.ids("split_outputs"),
                   f.text("secret", None), f.text("runner_zid", None),
                   None if runner is None else RunnerIdentity.from_dict(runner, f"{where}: runner"),
                   f.text("listen", None), f.texts("upstreams"),
                   dataflow_uuid=f.text("dataflow_uuid", None),
                   restart_count=f.whole("restart_count", 0, minimum=0),
                   replay_outputs=f.ids("replay_outputs"),
                   resume_seqs={i: n for i, n in f.mapping("resume_seqs").items() if n.__class__ is int and n >= 0},
                   start_gate=f.flag("start_gate", False), machine=f.text("machine", None))

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "node configuration") -> NodeConfig:
        """Parse and check a configuration; ``where`` names its origin in error messages
        (e.g. the environment variable)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise NodeConfigError(f"{where} is not JSON ({exc}); it is written by the dora-zenoh runner: "
                                  "start the node with `dora-zenoh run`, and check that runner and node "
                                  "use the same dora-zenoh") from None
        return cls.from_dict(data, where)


_MISSING: Any = object()


class _Fields:
    """Typed reads of one JSON object's fields, each failure a NodeConfigError naming the field."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise NodeConfigError(f"{where}: should be a JSON object, not {type(data).__name__}")
        self.data, self.where = data, where

    def error(self, name: str, problem: str) -> NodeConfigError:
        return NodeConfigError(f"{self.where}: field '{name}' {problem} (the configuration is written by "
                               "the dora-zenoh runner: do runner and node use the same dora-zenoh?)")

    def _get(self, name: str, default: Any, ok: Any, wanted: str) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or (value is None and default is None):
            if default is _MISSING:
                raise self.error(name, "is missing")
            return default
        if not ok(value):
            raise self.error(name, f"should be {wanted}, not {value!r}")
        return value

    def text(self, name: str, default: Any = _MISSING) -> Any:
        return self._get(name, default, lambda v: isinstance(v, str), "text")

    def flag(self, name: str, default: Any = _MISSING) -> Any:
        return self._get(name, default, lambda v: isinstance(v, bool), "true or false")

    def whole(self, name: str, default: Any = _MISSING, minimum: int | None = None,
              maximum: int | None = None) -> Any:
        value = self._get(name, default, lambda v: isinstance(v, int) and not isinstance(v, bool),
                          "a whole number")
        if value is not None and minimum is not None and value < minimum:
            raise self.error(name, f"should be at least {minimum}, not {value}")
        if value is not None and maximum is not None and value > maximum:
            raise self.error(name, f"should be at most {maximum}, not {value}")
        return value

    def number(self, name: str, default: Any = _MISSING) -> Any:
        return float(self._get(name, default, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                               "a number"))

    def mapping(self, name: str) -> dict[str, Any]:
        return self._get(name, {}, lambda v: isinstance(v, dict), "a JSON object")

    def items(self, name: str) -> list[Any]:
        return self._get(name, [], lambda v: isinstance(v, list), "a list")

    def texts(self, name: str) -> list[str]:
        return list(self._get(name, [], lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                              "a list of text"))

    def ids(self, name: str) -> list[str]:
        return list(self._get(name, [], lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                              "a list of ids"))

    def node_lists(self, name: str, default: Any = _MISSING) -> dict[str, list[str]] | None:
        """A map of output ids to lists of node ids; ``{}`` when missing, unless ``default`` is given."""
        value = self._get(name, {} if default is _MISSING else default, lambda v: isinstance(v, dict),
                          "a JSON object")
        if value is None:
            return None
        for out_id, nodes in value.items():
            if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
                raise self.error(f"{name}.{out_id}", f"should be a list of node ids, not {nodes!r}")
        return {o: list(r) for o, r in value.items()}


# -- built from the descriptor, by the runner ----------------------------------------------------
def stdout_outputs(desc: Descriptor) -> set[tuple[str, str]]:
    """(node, output) pairs whose stdout lines the runner publishes (``send_stdout_as``).

    An operator runtime publishes its operators' lines itself, as ordinary outputs.
    """
    return {(n.id, n.send_stdout_as) for n in desc.nodes if n.send_stdout_as and n.kind != "runtime"}


def input_config(desc: Descriptor, dataflow: str, inp: ResolvedInput, machine: str | None = None) -> InputConfig:
    """One input as a node sees it: the key to subscribe to and its queue.

    ``machine``: where the reading node runs. A source on another machine counts as
    restartable: losing its token may be a network partition, not its end, so only its
    supervisor's ``exited`` token closes the input (and data resumes when the link heals).
    """
    if inp.timer_ns:
        return InputConfig(inp.queue_size, inp.queue_policy, timer_ns=inp.timer_ns)
    if inp.source_node is None or inp.source_output is None:  # the descriptor gives every non-timer a source
        raise ValueError(f"input {inp.id!r} has neither a timer nor a source")
    key = keys.data_key(desc.prefix, dataflow, inp.source)
    if inp.queue_policy == "block" and split_output(desc, inp.source_node, inp.source_output):
        key = keys.block_key(desc.prefix, dataflow, inp.source)  # see keys.block_key
    stdout = (inp.source_node, inp.source_output) in stdout_outputs(desc)
    remote = _machine_of(desc, inp.source_node) != machine
    return InputConfig(inp.queue_size, inp.queue_policy, key=key,
                       source_node=inp.source_node, source_output=inp.source_output, stdout=stdout,
                       restartable=inp.source_node in restartable_nodes(desc) or remote,
                       # the runner publishes stdout lines with a plain publisher: nothing to recover
                       recover=inp.queue_policy == "block" and remote and not stdout)


def _machine_of(desc: Descriptor, node_id: str) -> str | None:
    try:
        return desc.node(node_id).machine
    except KeyError:
        return None


def restartable_nodes(desc: Descriptor) -> set[str]:
    """Nodes whose process may end and come back: a ``restart_policy`` other than ``never``,
    or ``path: dynamic`` (started by hand; may leave and rejoin).

    Their downstream inputs ignore the loss of their liveliness token and their
    end-of-stream notices, and close only on the runner's final ``exited/<node>``
    token (or when the dataflow stops), so a restart is invisible downstream.
    """
    return {n.id for n in desc.nodes if n.restart_policy != "never" or n.kind == "dynamic"}


def _readers(desc: Descriptor, node_id: str) -> list[tuple[str, str, ResolvedInput]]:
    """(reader node, output read, its input) for every input of a node started with the
    dataflow that reads an output of ``node_id``."""
    found: list[tuple[str, str, ResolvedInput]] = []
    for other in desc.nodes:
        if other.id == node_id or other.kind == "dynamic":
            continue
        all_inputs = list(other.inputs.values()) + [i for op in other.operators for i in op.inputs.values()]
        found.extend((other.id, i.source_output, i) for i in all_inputs
                     if i.source_node == node_id and i.source_output)
    return found


def split_output(desc: Descriptor, node_id: str, output: str) -> bool:
    """Whether ``node_id`` publishes ``output`` on its block key for its ``queue_policy: block``
    readers, and on its data key with congestion control DROP for everyone else (drop_oldest
    readers, tools, plain Zenoh clients): every output a block reader reads, so that only
    those readers can hold the sender back. (Before 3 Dec, an output read by block readers
    alone was BLOCK on its data key: a paused `topic echo` held the sender back.) Not a
    stdout output: the runner publishes those, on the data key."""
    return "block" in output_policies(desc, node_id).get(output, set()) and \
        (node_id, output) not in stdout_outputs(desc)


def output_policies(desc: Descriptor, node_id: str) -> dict[str, set[str]]:
    """For each output of ``node_id``: the queue policies its readers use."""
    policies: dict[str, set[str]] = {}
    for _, output, i in _readers(desc, node_id):
        policies.setdefault(output, set()).add(i.queue_policy)
    return policies


def block_readers_by_output(desc: Descriptor, node_id: str) -> dict[str, list[str]]:
    """For each output of ``node_id``: the readers with ``queue_policy: block``, the only ones
    that may hold the sender back (and that it waits for when it exits)."""
    readers: dict[str, list[str]] = {}
    for other, output, i in _readers(desc, node_id):
        if i.queue_policy == "block" and other not in readers.setdefault(output, []):
            readers[output].append(other)
    return {o: r for o, r in readers.items() if r}


def replay_outputs(desc: Descriptor, node_id: str) -> list[str]:
    """Outputs of ``node_id`` that a ``queue_policy: block`` reader on another machine reads:
    the sender keeps their last messages for that reader to recover after a link outage."""
    here = _machine_of(desc, node_id)
    return sorted(o for o, rs in block_readers_by_output(desc, node_id).items()
                  if any(_machine_of(desc, r) != here for r in rs))


def readers_by_output(desc: Descriptor, node_id: str) -> dict[str, list[str]]:
    """For each output of ``node_id``: the nodes started with the dataflow that read it
    (what its start barrier waits for; dynamic nodes never hold it up)."""
    readers: dict[str, list[str]] = {}
    for other, output, _ in _readers(desc, node_id):
        out_readers = readers.setdefault(output, [])
        if other not in out_readers:
            out_readers.append(other)
    return readers


def barrier_timeout_for(nodes: int) -> float:
    """How long the start barrier waits in a dataflow of ``nodes`` nodes: ``$DORA_ZENOH_START_TIMEOUT``,
    else the default (see BARRIER_PER_NODE). A malformed value: the default (the runner says so once)."""
    try:
        configured = settings.START_TIMEOUT.get()
    except ValueError:
        configured = None
    return configured if configured is not None else max(DEFAULT_BARRIER_TIMEOUT, BARRIER_PER_NODE * nodes)


def node_config(desc: Descriptor, dataflow: str, node: ResolvedNode, endpoint: str,
                supervised: bool = True, fresh_start: bool = False, secret: str | None = None,
                runner_zid: str | None = None, runner: RunnerIdentity | None = None,
                listen: str | None = None, upstreams: list[str] | None = None,
                dataflow_uuid: str | None = None, restart_count: int = 0,
                resume_seqs: dict[str, int] | None = None, start_gate: bool = False) -> NodeConfig:
    """Everything node ``node`` needs to join dataflow ``dataflow`` (run ``dataflow_uuid``).

    ``secret``: the run's signing secret, only for the processes the runner starts (never
    served over Zenoh to a dynamic node). ``runner_zid``: the runner's Zenoh session id.
    ``listen``/``upstreams``: its place in the runner's link plan, if it has one.
    """
    runtime = node.kind == "runtime"
    outputs = {o: keys.data_key(desc.prefix, dataflow, f"{node.id}/{o}")
               for o in node.outputs if runtime or o != node.send_stdout_as}
    return NodeConfig(
        dataflow=dataflow, node=node.id, prefix=desc.prefix, endpoint=endpoint, descriptor=str(desc.path),
        supervised=supervised,
        inputs={i: input_config(desc, dataflow, inp, node.machine) for i, inp in node.inputs.items()},
        outputs=outputs, readers=readers_by_output(desc, node.id),
        operators=[operator_config(node, op) for op in node.operators] if runtime else [],
        fresh_start=fresh_start,
        block_readers=block_readers_by_output(desc, node.id),
        split_outputs=sorted(o for o in output_policies(desc, node.id) if split_output(desc, node.id, o)),
        secret=secret, runner_zid=runner_zid, runner=runner, listen=listen, upstreams=list(upstreams or []),
        dataflow_uuid=dataflow_uuid, restart_count=restart_count, barrier_timeout=barrier_timeout_for(len(desc.nodes)),
        replay_outputs=[o for o in replay_outputs(desc, node.id) if o in outputs],
        resume_seqs=dict(resume_seqs or {}), start_gate=start_gate and runner_zid is not None,
        machine=node.machine)


def operator_config(node: ResolvedNode, op: OperatorSpec) -> OperatorConfig:
    """One operator of a runtime node: its file and ids, without the node-level "opid/" prefix.

    A node-level ``send_stdout_as: opid/out`` counts as that operator's.
    """
    stdout_as = op.send_stdout_as
    if stdout_as is None and node.send_stdout_as and node.send_stdout_as.startswith(f"{op.id}/"):
        stdout_as = node.send_stdout_as[len(op.id) + 1:]
    return OperatorConfig(op.id, str(op.python), list(op.inputs), list(op.outputs), stdout_as)
