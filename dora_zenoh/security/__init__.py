"""Who may do what: the coordinator's control socket, request checks, certificates for TLS.

Depends only on the standard library, :mod:`dora_zenoh.errors` and :mod:`dora_zenoh.wire`,
so the supervision layer can use it (see docs/security.md for the threat model).
"""
