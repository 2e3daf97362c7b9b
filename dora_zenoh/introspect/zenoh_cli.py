"""A decoder for PyPI's ``zenoh-cli``: ``zenoh subscribe -k 'dora/**' --decoder dora``.

zenoh-cli loads decoders from the entry point group ``zenoh_cli.codecs.decoders`` and
calls them with the key and the payload bytes only (no encoding, no attachment), so
Arrow is recognised by its first bytes. Each line names the key, since zenoh-cli's
default line format is the value alone.
"""
from __future__ import annotations

from typing import Any

from dora_zenoh.introspect.decode import decode as _decode
from dora_zenoh.introspect.decode import value_text


def decode(key: Any, value: bytes) -> str:
    """``dora/flow/talker/speed: double[2] [1.0, 2.5]``; never raises on binary data."""
    return f"{key}: {value_text(_decode(value, '', None, str(key)))}"
