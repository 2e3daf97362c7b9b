"""Per-node prefixes are coloured for a person at a terminal, plain when piped or with NO_COLOR."""
from __future__ import annotations

import io
import os
import pty

from dora_zenoh.console import colour_prefix, use_colour


def test_prefix_colour_is_stable_and_only_on_the_tag():
    line = colour_prefix("[camera] frame 3", "camera")
    assert line.startswith("\x1b[") and line.endswith("\x1b[0m frame 3")
    assert line == colour_prefix("[camera] frame 3", "camera")
    assert colour_prefix("no tag here", "camera") == "no tag here"


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert not use_colour(io.StringIO())
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert use_colour(tty)
            monkeypatch.setenv("NO_COLOR", "1")
            assert not use_colour(tty)
    finally:
        os.close(master)
        os.close(slave)
