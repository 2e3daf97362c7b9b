"""Who may do what: the coordinator's control socket, request checks, certificates for TLS.

In the same layer as :mod:`dora_zenoh.wire`: it depends only on the standard library, Zenoh and
the base layer (:mod:`dora_zenoh.errors`, :mod:`dora_zenoh.settings`), so the supervision layer can
use it (see docs/security.md for the threat model).
"""
