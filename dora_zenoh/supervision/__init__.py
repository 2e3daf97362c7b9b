"""Spawning and supervising node processes: ``run``'s supervisor, the coordinator and its client."""
