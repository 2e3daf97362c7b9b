"""Start offers kept on disk: a coordinator started again serves the files a dataflow started with.

A machine whose daemon comes back restarts its nodes from its dataflow's start offer
(``ship.prepare_machines``, ``pinned``), so they run what the other machines run. The coordinator
kept that offer in memory only: after its own restart it shipped the folder as it was by then, and
said nothing. Now each offer is also kept in the coordinator's state folder
(``$XDG_STATE_HOME/dora-zenoh/offers/<endpoint>/<run id>``, owner-only) until its dataflow ends;
a coordinator started again takes it back when it adopts that dataflow, and removes the ones it
has not adopted ADOPT_WINDOW seconds after it started (their dataflows ended while it was gone).
"""
from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable

from dora_zenoh.console import warn
from dora_zenoh.supervision import ship
from dora_zenoh.supervision.paths import state_home

ADOPT_WINDOW = 300.0  # s after a coordinator's start during which its predecessor's offers wait to be adopted


class KeptOffers:
    """The start offers of one coordinator (one endpoint) on disk."""

    def __init__(self, endpoint: str) -> None:
        self.root = state_home() / "offers" / re.sub(r"[^A-Za-z0-9_.-]+", "_", endpoint)
        self._warned = False

    def keep(self, run_id: str, offer: ship.Offer) -> None:
        """Keep ``offer`` (dataflow run ``run_id``'s start) until it is discarded with its dataflow."""
        try:
            offer.keep_in(self.root / run_id)
        except OSError as exc:  # the offer still works from memory: only a restart of ours loses it
            if not self._warned:
                self._warned = True
                warn(f"cannot keep a dataflow's start files in {self.root} ({exc.strerror or exc}): if this "
                     "coordinator is restarted, machines that restart nodes later get the folder as it is then")

    def take_back(self, run_id: str) -> ship.Offer | None:
        """The offer kept for run ``run_id`` by an earlier coordinator of this endpoint, if any."""
        return ship.restore(self.root / run_id)

    def prune_later(self, adopted: Callable[[], set[str]], window: float = ADOPT_WINDOW) -> None:
        """In ``window`` seconds, remove the offers an earlier coordinator kept that ``adopted()``
        (the run ids this one took back) does not name."""
        try:
            earlier = [p for p in self.root.iterdir() if p.is_dir()]
        except OSError:
            return
        if not earlier:
            return

        def prune() -> None:
            keep = adopted()
            for folder in earlier:
                if folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
        timer = threading.Timer(window, prune)
        timer.daemon = True
        timer.start()
