"""Scheduling and power settings that make message hand-overs cheap (Linux-specific, best effort)."""
