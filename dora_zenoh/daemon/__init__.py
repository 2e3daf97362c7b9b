"""One daemon per machine: it hosts the machine's Zenoh hub and supervises the nodes placed there.

See :mod:`.agent`; which node runs where is :mod:`dora_zenoh.descriptor.placement`.
"""
