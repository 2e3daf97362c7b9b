"""The 2022 dora API (dora < 0.3), told apart from today's by how the caller uses the result.

Scripts written for it read ``input_id, value = node.next()`` or
``for input_id, value in node:`` and never see ``INPUT_CLOSED`` or ``STOP`` events; a
node in that mode skips them, and ``next()`` returns None where a STOP would come. A
node decides once, on its first ``next()``/iteration (``Node._legacy``), by looking at
the calling code; the operator runtime pins it to the current API.
"""
from __future__ import annotations

import dis
from typing import Any


def caller_unpacks(frame: Any) -> bool:
    """Whether the calling code unpacks our result into two names (the 2022 API).

    ``input_id, value = node.next()`` and ``for input_id, value in node:`` compile to
    an ``UNPACK_SEQUENCE 2`` right after the call; dora >= 0.3 code binds one name.
    Looked at once per node, so its cost does not matter.
    """
    try:
        lasti = frame.f_lasti
        for ins in dis.get_instructions(frame.f_code):
            if ins.offset > lasti and ins.opname != "CACHE":
                return ins.opname == "UNPACK_SEQUENCE" and ins.arg == 2
    except Exception:
        pass
    return False
