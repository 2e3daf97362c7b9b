"""The 2022 ``communication: {zenoh: {prefix: ...}}``: the first chunks of every key of the dataflow."""
from __future__ import annotations

from dora_zenoh.descriptor.context import Context
from dora_zenoh.descriptor.schema import TopSchema

_HINT = "the prefix starts every Zenoh key of the dataflow, e.g. 'foo' or 'lab/robot1'"


def key_prefix(ctx: Context, top: TopSchema | None) -> str:
    """The prefix (``dora`` unless given); one problem for its first chunk Zenoh would refuse."""
    if top is None or top.communication is None or top.communication.zenoh is None:
        return "dora"
    prefix = (top.communication.zenoh.prefix or "").strip("/")
    if not prefix:
        return "dora"
    at = ("communication", "zenoh", "prefix")
    for chunk in prefix.split("/"):
        if not chunk:
            ctx.add(f"prefix '{prefix}' has an empty chunk ('//')", at, hint=_HINT)
        elif any(c in chunk for c in "*$?#"):
            ctx.add(f"prefix '{prefix}' contains a Zenoh special character (*, $, ? or #)", at, hint=_HINT)
        elif chunk.startswith("@"):
            ctx.add(f"prefix '{prefix}' has a chunk starting with '@', which Zenoh reserves", at, hint=_HINT)
        else:
            continue
        break
    return prefix
