"""DoraStatus: what an operator's handler returns."""
from __future__ import annotations

from enum import Enum


class DoraStatus(Enum):
    """CONTINUE keeps the operator running, STOP stops it, STOP_ALL stops the dataflow."""

    CONTINUE = 0
    STOP = 1
    STOP_ALL = 2
