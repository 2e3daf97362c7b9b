"""The README stays short and its first node is the tutorial's file, word for word."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def code_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks of a markdown text."""
    blocks, body, inside = [], [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if inside:
                blocks.append("".join(body))
            body, inside = [], not inside
        elif inside:
            body.append(line)
    return blocks


def test_readme_shows_the_tutorial_files_as_they_are():
    blocks = code_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    for name in ("dataflow.yml", "thermometer.py"):
        assert (ROOT / "examples" / "tutorial" / name).read_text(encoding="utf-8") in blocks, name


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250
