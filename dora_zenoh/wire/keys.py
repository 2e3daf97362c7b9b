"""Key expressions: the wire contract in one place.

User data lives on ``{prefix}/{dataflow}/{node}/{output}`` (an operator's output
on ``{prefix}/{dataflow}/{node}/{operator}/{output}``), so an input's
``source: node/op/output`` is literally the key's suffix and ``{prefix}/**``
shows user data only. Everything internal lives under the verbatim chunk
``@dz`` (``{prefix}/@dz/...``), which ``*`` and ``**`` never match.
"""
from __future__ import annotations

DEFAULT_PREFIX = "dora"
INTERNAL = "@dz"
# The node id a `run --record` / `start --record` recorder announces itself as (a plain chunk, so
# the nodes' `live/<dataflow>/**` subscription sees it; a YAML node with this id would clash).
RECORDER_NODE = "_recorder"


def data_key(prefix: str, dataflow: str, source: str) -> str:
    """Key of an output; ``source`` is ``node/output`` or ``node/operator/output``."""
    return f"{prefix}/{dataflow}/{source}"


def live_root(prefix: str, dataflow: str) -> str:
    """Liveliness tokens of one dataflow: ``node/<id>``, ``exited/<id>``, ``sent/...``, ``ready/<zid>``,
    ``stop``, ``runner``."""
    return f"{prefix}/{INTERNAL}/live/{dataflow}"


def node_token(prefix: str, dataflow: str, node: str) -> str:
    """Declared by a node once all its inputs are subscribed: it is ready and alive."""
    return f"{live_root(prefix, dataflow)}/node/{node}"


def exited_token(prefix: str, dataflow: str, node: str) -> str:
    """Declared by the runner when a node's process has exited (whatever the node did)."""
    return f"{live_root(prefix, dataflow)}/exited/{node}"


def sent_token(prefix: str, dataflow: str, node: str, output: str, count: int) -> str:
    """(A machine's part of a multi-machine dataflow) declared with a node's ``exited`` token: how
    many messages it sent on ``output`` in all, for its readers on other machines that did not
    get its end-of-stream notice (a link outage): a token reaches them once the link is back."""
    return f"{live_root(prefix, dataflow)}/sent/{node}/{output}/{count}"


def ready_token(prefix: str, dataflow: str, zid: str) -> str:
    """Declared by a runner (Zenoh session id ``zid``) once every node it started is ready or
    has ended: its nodes' ``Node()`` returns then (supervision.startgate)."""
    return f"{live_root(prefix, dataflow)}/ready/{zid}"


def stop_token(prefix: str, dataflow: str) -> str:
    """Declared by the runner when the dataflow is asked to stop; late joiners see it too."""
    return f"{live_root(prefix, dataflow)}/stop"


# How long a check for a dataflow's runner token waits for the peers' answers: an absent token
# answers at once, a peer on a loaded machine may answer late (0.5 s was too short to rule out).
NAME_CHECK_TIMEOUT = 3.0


def runner_token(prefix: str, dataflow: str) -> str:
    """Declared by whatever supervises the dataflow for as long as it runs."""
    return f"{live_root(prefix, dataflow)}/runner"


def eos_key(prefix: str, dataflow: str, node: str) -> str:
    """End-of-stream notices of a node's outputs, sent in order after its last message."""
    return f"{prefix}/{INTERNAL}/eos/{dataflow}/{node}"


def block_key(prefix: str, dataflow: str, source: str) -> str:
    """The key of an output for its ``queue_policy: block`` readers (a publisher that may hold
    the sender back); everyone else reads the data key (a publisher that never does):
    see contract.split_output."""
    return f"{prefix}/{INTERNAL}/blk/{dataflow}/{source}"


def ack_key(prefix: str, dataflow: str, node: str, reader: str) -> str:
    """Where ``reader`` says it has the end-of-stream notice of its source ``node`` (a put of
    ``{"zid": ...}``, the notice's session id): a node that exits waits until its readers have
    it, since everything it sent is then in them."""
    return f"{prefix}/{INTERNAL}/ack/{dataflow}/{node}/{reader}"


def facts_key(prefix: str, dataflow: str) -> str:
    """Queryable of the runner: the control facts it stands by (stop, exited nodes), so a
    node believes an ``exited``/``stop`` token only when the runner's own session confirms it."""
    return f"{prefix}/{INTERNAL}/facts/{dataflow}"


def stop_request_key(prefix: str, dataflow: str) -> str:
    """Where a node of the run asks the runner to stop the whole dataflow (an operator's
    STOP_ALL), with a signed request (see ``wire.codec.sign``): a ``stop`` token alone may
    come from any Zenoh session."""
    return f"{prefix}/{INTERNAL}/stopreq/{dataflow}"


def flush_key(prefix: str, dataflow: str, node: str) -> str:
    """Empty express messages a node sends after a burst of messages (see ``Node._flush``);
    every node that reads from ``node`` subscribes, so each reaches the links the burst took."""
    return f"{prefix}/{INTERNAL}/flush/{dataflow}/{node}"


def config_key(prefix: str, dataflow: str, node: str) -> str:
    """Queryable that hands a dynamic node its configuration."""
    return f"{prefix}/{INTERNAL}/cfg/{dataflow}/{node}"


def stats_key(prefix: str, dataflow: str, node: str) -> str:
    """Queryable of a node: how many messages it has sent per output (for ``list NAME``).

    Nodes count their own messages (the sequence numbers they stamp anyway), so
    counting costs nothing on the data path and no user data reaches the coordinator.
    """
    return f"{prefix}/{INTERNAL}/stats/{dataflow}/{node}"


def wake_key(prefix: str, dataflow: str, node: str, zid: str) -> str:
    """A node's private wake-up ring when it has no input to wait on (see ``inbox``);
    only session-local markers are ever put on it."""
    return f"{prefix}/{INTERNAL}/wake/{dataflow}/{node}/{zid}"


# -- the coordinator's control plane (always under the default prefix) --------------------------


def ctl_key(verb: str) -> str:
    """Queryable of the coordinator for one command (``start``, ``stop``, ``list``...)."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/ctl/{verb}"


def coordinator_token() -> str:
    """Declared by the coordinator for as long as it runs."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/coordinator"


def log_key(dataflow: str, node: str) -> str:
    """Log lines of a node of a coordinator-run dataflow (``start --attach``, ``logs --follow``)."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/log/{dataflow}/{node}"


def done_key(dataflow: str) -> str:
    """The result of a coordinator-run dataflow, published once when it ends."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/done/{dataflow}"


# -- the daemons of several machines (always under the default prefix) --------------------------


def daemon_token(machine: str) -> str:
    """Declared by the daemon of ``machine`` for as long as it runs (``*`` for every daemon)."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/daemon/{machine}"


def daemon_ctl_key(machine: str, verb: str) -> str:
    """Queryable of a daemon for one command (``spawn``, ``stop``, ``list``, ``logs``)."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/daemon/{machine}/ctl/{verb}"


def daemon_state_key(machine: str) -> str:
    """A daemon's periodic report: every dataflow part it supervises, with its nodes' states
    (the coordinator's view of remote nodes, and how a restarted coordinator re-adopts them)."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/daemon/{machine}/state"


def files_key(token: str, digest: str = "*", chunk: str = "*") -> str:
    """Queryable of the coordinator for one offer of a dataflow's folder (:mod:`dora_zenoh.supervision.ship`):
    chunk ``chunk`` of the file (or manifest) whose sha256 is ``digest``. ``token`` is the offer's random
    capability, given only to the daemons of the dataflow's machines."""
    return f"{DEFAULT_PREFIX}/{INTERNAL}/files/{token}/{digest}/{chunk}"
