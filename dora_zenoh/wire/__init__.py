"""The wire contract: key expressions, payload codec, Zenoh session settings and the node contract.

Everything a plain Zenoh client needs to read or write a dataflow's traffic is defined here.
"""
