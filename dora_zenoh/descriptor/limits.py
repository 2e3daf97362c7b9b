"""Limits the YAML and a node's configuration share (a base module: nothing to import, cheap for nodes)."""

# A node's ring channel holds its inputs' queues (docs/design/inbox.md), and Zenoh allocates it at
# once (256 B a slot): a queue_size of 10^15 aborted the node ("memory allocation of
# 256000000000002304 bytes failed"). A million messages is far beyond what a robot buffers on purpose.
MAX_QUEUE_SIZE = 1_000_000
