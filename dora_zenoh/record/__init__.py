"""Record and replay: MCAP files that keep every byte, replay in place of live nodes, Foxglove live.

``mapping`` is the file format (how a Zenoh message becomes an MCAP record and back),
``writer`` and ``reader`` implement it with PyPI's ``mcap``, ``recorder`` and ``player``
are the two Zenoh sides, ``info`` the ``bag info`` figures, ``jsonform`` the JSON form of
Arrow values and ``foxglove`` the live bridge. Everything here is imported lazily by the
CLI: ``mcap`` and ``foxglove-sdk`` are the optional ``record`` extra.
"""
