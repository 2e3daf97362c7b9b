"""introspect.usage: nodes the coordinator hears nothing from (a partition) are shown, not waited for."""
from __future__ import annotations

from dora_zenoh.introspect.discovery import NodeInfo, Snapshot
from dora_zenoh.introspect.usage import CpuSampler, rows


def test_nodes_of_a_silent_machine_are_shown_unknown_or_lost() -> None:
    snap = Snapshot()
    snap.nodes[("f", "act")] = NodeInfo("f", "dora", "act", alive=True)
    sup = {"f": {"act": {"id": "act", "status": "running", "machine": "a", "reported": 0.4},
                 "proc": {"id": "proc", "status": "running", "machine": "b", "reported": 3.1, "restarts": 0},
                 "cam": {"id": "cam", "status": "lost", "machine": "c", "reported": 9.0, "restarts": 1},
                 "old": {"id": "old", "status": "succeeded", "machine": "a", "reported": 0.2}}}
    found = {r.id: r for r in rows(snap, CpuSampler(), supervisor=sup)}
    assert found["act"].status == "running"
    assert (found["proc"].status, found["proc"].machine, found["proc"].pid) == ("unknown", "b", None)
    assert (found["cam"].status, found["cam"].restarts) == ("lost", 1)
    assert "old" not in found  # an ended node that no longer answers is not added


def test_a_node_of_another_host_is_measured_there_not_here() -> None:
    """A node placed on machine "a" reports that id, and its host name apart: a tool on another
    machine (a daemon answering for its own nodes only, daemon.desk) samples only the nodes of
    its own host, and says where the others are measured."""
    import os

    snap = Snapshot()
    snap.nodes[("f", "far")] = NodeInfo("f", "dora", "far", pid=os.getpid(), machine="a", host="not-" + os.uname().nodename)
    snap.nodes[("f", "near")] = NodeInfo("f", "dora", "near", pid=os.getpid(), machine="b", host=os.uname().nodename)
    found = {r.id: r for r in rows(snap, CpuSampler())}
    assert (found["far"].machine, found["far"].cpu, found["far"].rss, found["far"].measured_elsewhere) == (
        "a", None, None, True)
    assert (found["near"].machine, found["near"].measured_elsewhere) == ("b", False)
    assert found["near"].rss is not None and found["near"].rss > 0  # this very process, sampled here
