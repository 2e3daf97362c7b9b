"""The MCAP mapping: how one Zenoh message of a dataflow becomes MCAP records, and back.

Written down in ``docs/record-replay.md`` so other tools can read our files. In short:

* one MCAP channel per key and payload kind: topic = the Zenoh key, ``message_encoding`` =
  the Zenoh encoding the sender used (``application/octet-stream``, ``text/plain;charset=utf-8``,
  ``application/vnd.apache.arrow.stream``); an Arrow channel has a Schema record (encoding
  ``arrow.ipc.schema``, data = the Arrow schema as an IPC message). Channel metadata
  names the dataflow, the prefix and the source (``node/output``).
* message data = the payload bytes as sent; ``sequence`` = the sender's ``seq``;
  ``publish_time`` = the sender's ``ts``; ``log_time`` = when the recorder received it.
* the attachment is implied when it is exactly ``{"seq":N,"ts":T}`` (rebuilt from
  ``sequence`` and ``publish_time``); otherwise (metadata ``params``, a foreign sender, no
  attachment at all) its raw bytes are written, just before the message, on the
  channel's companion attachment channel (topic ``<key>/@attachment``).

Standard library only: the writer and reader import ``mcap``.
"""
from __future__ import annotations

PROFILE = "dora-zenoh"
FORMAT_VERSION = "1"
ENC_BYTES = "application/octet-stream"
ENC_TEXT = "text/plain;charset=utf-8"
ENC_ARROW = "application/vnd.apache.arrow.stream"
ENC_ATTACHMENT = "application/vnd.dora-zenoh.attachment"  # raw attachment bytes, verbatim
ENC_JSON = "json"  # Foxglove's JSON encoding (the --foxglove channels)
SCHEMA_ARROW = "arrow.ipc.schema"
SCHEMA_ARROW_B64 = "arrow.ipc.schema+base64"  # the same, as text (Foxglove WebSocket protocol)
SCHEMA_JSON = "jsonschema"
ATTACHMENT_SUFFIX = "/@attachment"
JSON_SUFFIX = "/@json"
# Metadata records
META_RECORDING = "dora-zenoh.recording"   # prefix, dataflow, started, format version
META_DROPS = "dora-zenoh.drops"           # topic -> messages dropped (buffer full), written at the end
META_SENT = "dora-zenoh.sent"             # topic -> messages its sender says it sent (end-of-stream notices)
META_STATS = "dora-zenoh.recorder"        # the recorder's figures (CPU per stage, buffer peak), last part only
# Channel metadata fields
CH_ROLE = "dora-zenoh.role"               # "data" | "attachment" | "json"
CH_KEY = "dora-zenoh.key"
CH_PREFIX = "dora-zenoh.prefix"
CH_DATAFLOW = "dora-zenoh.dataflow"
CH_SOURCE = "dora-zenoh.source"           # node/output (node/operator/output)
CH_DATA_TOPIC = "dora-zenoh.data-channel"  # on an attachment channel: the data channel's id

SEQ_LIMIT = 1 << 32  # MCAP's sequence is a uint32


def canonical_attachment(seq: int, ts: int) -> bytes:
    """The attachment a dora-zenoh sender writes for a message without metadata."""
    return b'{"seq":%d,"ts":%d}' % (seq, ts)


def split_key(key: str, prefix: str, dataflow: str | None) -> tuple[str, str]:
    """``(dataflow, source)`` of a data key ``prefix/dataflow/node/output``."""
    rest = key[len(prefix) + 1:] if key.startswith(prefix + "/") else key
    if dataflow and rest.startswith(dataflow + "/"):
        return dataflow, rest[len(dataflow) + 1:]
    flow, _, source = rest.partition("/")
    return flow, source


def seq_ts(attachment: bytes | None) -> tuple[int | None, int | None, bool]:
    """``(seq, ts, canonical)`` of an attachment: canonical means ``canonical_attachment(seq, ts)``
    gives these exact bytes back. Hand-parsed: it runs for every recorded message."""
    if not attachment or attachment[:7] != b'{"seq":':
        return None, None, False
    comma = attachment.find(b',"ts":', 7)
    if comma < 0:
        return None, None, False
    end = attachment.find(b",", comma + 6)
    tail = attachment.find(b"}", comma + 6)
    try:
        seq = int(attachment[7:comma])
        ts = int(attachment[comma + 6:end if end >= 0 else tail])
    except ValueError:
        return None, None, False
    canonical = end < 0 and tail == len(attachment) - 1 and 0 <= seq < SEQ_LIMIT and \
        attachment == canonical_attachment(seq, ts)
    return seq, ts, canonical
