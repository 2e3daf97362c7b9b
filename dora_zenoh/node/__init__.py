"""The Node API: one process of a dataflow, talking Zenoh directly to its peers."""
