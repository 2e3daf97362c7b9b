"""docs/wire.md names every key dora_zenoh.wire.keys builds: the wire contract page stays complete."""
from __future__ import annotations

import inspect
from pathlib import Path

from dora_zenoh.wire import keys

ROOT = Path(__file__).resolve().parents[2]
# The placeholders docs/wire.md writes for each parameter of a key function.
PLACEHOLDER = {"prefix": "p", "dataflow": "d", "node": "n", "source": "n/o", "zid": "<zid>",
               "verb": "<command>", "reader": "r", "machine": "<machine>",
               "token": "<token>", "digest": "<sha256>", "chunk": "<chunk>", "output": "o", "count": "N"}


def documented_keys() -> dict[str, str]:
    """Each public key function's key, built from the placeholders."""
    built = {}
    for name, fn in inspect.getmembers(keys, inspect.isfunction):
        if name.startswith("_") or fn.__module__ != keys.__name__:
            continue
        args = [PLACEHOLDER[p] for p in inspect.signature(fn).parameters]
        built[name] = fn(*args)
    return built


def test_every_key_is_in_the_wire_page():
    page = (ROOT / "docs" / "wire.md").read_text(encoding="utf-8")
    built = documented_keys()
    assert built["data_key"] == "p/d/n/o"
    missing = {name: key for name, key in built.items() if f"`{key}`" not in page and key not in page}
    assert not missing, f"docs/wire.md does not name these keys: {missing}"
