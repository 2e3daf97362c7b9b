"""The Python operator runtime: operators loaded into one node process, fed its events."""
