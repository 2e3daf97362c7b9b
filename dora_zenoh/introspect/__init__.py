"""Watching a running dataflow: discovery, payload decoding, rate statistics, graphs (issue 22)."""
