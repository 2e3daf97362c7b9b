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
