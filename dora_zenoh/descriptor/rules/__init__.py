"""The checks of *meaning*, one module per family, each a few functions over a shared :class:`.Context`.

These need the whole dataflow at once (references between nodes, ids, paths on disk),
which a per-field validator of the schema cannot see. Every check reports and carries
on, so the user gets every problem of a file in one go.

- :mod:`.structure`: pydantic errors as problems; the per-node view (:class:`.NodeInfo`)
- :mod:`.ids`: node, operator and input ids
- :mod:`.outputs`: declared outputs
- :mod:`.inputs`: input forms, queues, timers, references to other nodes' outputs
- :mod:`.commands`: the kind of a node (path/custom/...) and its command line
- :mod:`.operators`: nodes hosting operators
- :mod:`.env`, :mod:`.stdout`, :mod:`.affinity`, :mod:`.prefix`: one setting each

Checks that look at this machine (files, PATH, CPUs) are in :mod:`dora_zenoh.descriptor.host`.
"""
