"""The dataflow descriptor: one YAML file, parsed, validated and resolved into plain dataclasses.

Lowest layer: it knows nothing of Zenoh. The node processes never import the schema
(pydantic), only :mod:`dora_zenoh.descriptor.timers` and :mod:`.model`.
"""
