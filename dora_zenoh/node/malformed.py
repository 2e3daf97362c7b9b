"""Messages a node refuses: an attachment or a payload that no dora-zenoh sender writes.

Any Zenoh session can publish on a dataflow's keys. A message whose attachment does not
parse, or whose Arrow payload does not decode, is dropped rather than handed to the
node's code: the first of each kind per key is logged with what was wrong, the rest are
counted and reported when the node closes.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dora_zenoh.console import warn
from dora_zenoh.wire import codec as wire

if TYPE_CHECKING:
    import zenoh

    from dora_zenoh.node.events import Event

# The attachment every dora-zenoh sender writes when there is no metadata: nothing to check
# (the node's per-message path calls it before _admit, which it then skips).
plain_attachment = re.compile(rb'\{"seq":\d{1,19},"ts":\d{1,19}\}').fullmatch


class MalformedChecks:
    """Mixed into :class:`dora_zenoh.node.node.Node`, which sets up these attributes."""

    node_id: str
    _malformed: dict[tuple[str, str], int]  # (key, what was wrong) -> samples dropped

    def _drop_malformed(self, key: str, problem: str) -> None:
        """Count a sample we refuse; log the first of each kind per key (with what was wrong)."""
        what = (key, wire.problem_kind(problem))
        if what not in self._malformed and len(self._malformed) >= wire.MAX_KINDS:
            what = ("(other keys)", "more kinds of malformed message")  # a bounded memory of them
        count = self._malformed.get(what, 0) + 1
        self._malformed[what] = count
        if count == 1:
            warn(f"node '{self.node_id}': dropped a malformed message on '{key}': {problem}; it did not come "
                 "from dora-zenoh. Others like it are counted and reported when the node closes")

    def _admit(self, sample: zenoh.Sample, raw: bytes | None = None) -> bool:
        """Whether a received message's attachment (``raw``: its bytes, when the caller has them)
        is one a dora-zenoh sender writes. Costs one regex match per message without metadata;
        anything else is checked in full."""
        if raw is None:
            att = sample.attachment
            raw = att.to_bytes() if att is not None else None
        if raw is not None:
            if not plain_attachment(raw):
                problem = wire.check_attachment(raw)[1]
                if problem is not None:
                    self._drop_malformed(str(sample.key_expr), problem)
                    return False
        return True

    def _event_of(self, sample: zenoh.Sample, build: Callable[..., Event], *args: Any) -> Event | None:
        """The event of an admitted message (``build(*args)`` makes its Arrow value), or None
        after dropping one whose payload does not decode as its encoding says."""
        try:
            return build(*args)
        except ImportError:
            raise  # pyarrow itself is broken: not the message's fault
        except Exception as exc:  # pyarrow's ArrowInvalid and friends
            self._bad_payload(sample, exc)
            return None

    def _bad_payload(self, sample: zenoh.Sample, exc: Exception) -> None:
        """Drop a message whose payload does not decode as its encoding says."""
        self._drop_malformed(str(sample.key_expr), f"payload is not a valid Arrow IPC stream ({exc})")

    def _report_malformed(self) -> None:
        """The totals of the malformed messages we dropped (the first of each kind was logged)."""
        for (key, problem), count in sorted(self._malformed.items()):
            if count > 1:
                warn(f"node '{self.node_id}': dropped {count} malformed message(s) on '{key}' in all ({problem})")
