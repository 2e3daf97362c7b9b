"""Lines a node prints on stderr that the runner reads as facts about how the node ended.

Stderr is the one channel that still works when Zenoh does not (the supervisor was
unreachable, the session failed to close): the runner drains it whatever happens. A
node that exits with code 0 after printing one of these is reported as failed.
"""
from __future__ import annotations

# The node stopped because it lost its supervisor (node/supervisor.py).
LOST_TAG = "[dora-zenoh] supervision lost:"
# The node's Zenoh session did not close cleanly (e.g. "close operation timed out").
CLOSE_FAILED_TAG = "[dora-zenoh] close failed:"
