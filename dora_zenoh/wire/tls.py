"""Endpoints beyond this machine: mutual TLS by default, plain TCP only when asked.

Every session of a dataflow (hub, runner, nodes) reads the same environment, so one
setting covers them all: ``DORA_ZENOH_TLS=/path/robot.pem`` names this machine's
certificate; its key (``robot.key``) and the CA (``ca.pem``) sit next to it, as
``dora-zenoh certs`` writes them. An endpoint that is not loopback (or a Unix socket)
must then be ``tls/...``; plain ``tcp/`` to the network needs
``DORA_ZENOH_INSECURE_NETWORK=1`` and prints a warning.

Zenoh reports every TLS failure as "Unable to connect"; :func:`diagnose` redoes the
handshake with Python's ``ssl`` to say which certificate is wrong.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import NamedTuple

from dora_zenoh import settings
from dora_zenoh.errors import InsecureEndpointError, TlsSetupError
from dora_zenoh.wire.endpoint import NETWORK_PROTOCOLS, parse

TLS_ENV = settings.TLS.name
INSECURE_ENV = settings.INSECURE_NETWORK.name
ENCRYPTED = ("tls", "quic")
_warned: set[str] = set()


class TlsFiles(NamedTuple):
    """This machine's certificate, its private key and the CA both sides trust."""

    cert: Path
    key: Path
    ca: Path


def tls_files() -> TlsFiles | None:
    """The files named by ``$DORA_ZENOH_TLS`` (checked), or None when unset."""
    value = settings.TLS.get()
    if not value:
        return None
    import ssl  # only where TLS is used (a node process otherwise skips the import)

    cert = Path(value)
    files = TlsFiles(cert, cert.with_suffix(".key"), cert.parent / "ca.pem")
    for what, path in (("certificate", files.cert), ("private key", files.key), ("CA certificate", files.ca)):
        if not path.is_file():
            raise TlsSetupError(f"{TLS_ENV}={value}: the {what} {path} does not exist; create it with "
                                "`dora-zenoh certs` (see docs/security.md)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(str(files.ca))
    except (ssl.SSLError, OSError) as exc:
        raise TlsSetupError(f"cannot use the CA certificate {files.ca}: {exc}") from None
    try:
        context.load_cert_chain(str(files.cert), str(files.key))
    except (ssl.SSLError, OSError) as exc:
        raise TlsSetupError(f"cannot use the certificate {files.cert} with the key {files.key}: {exc} "
                            "(do they belong together? `dora-zenoh certs machine` writes both)") from None
    return files


def files_of(conf: object) -> TlsFiles | None:
    """The certificate, key and CA a session's Zenoh config (a ``zenoh.Config``) listens with:
    from ``$DORA_ZENOH_TLS`` or from the user's own Zenoh config file. None when it has none."""
    import json

    try:
        link = json.loads(conf.get_json("transport/link/tls"))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - no such section, an older zenoh: nothing to check
        return None
    paths = [link.get(k) for k in ("listen_certificate", "listen_private_key", "root_ca_certificate")]
    if not all(isinstance(p, str) and p for p in paths):
        return None
    return TlsFiles(*(Path(p) for p in paths))


def is_local(endpoint: str) -> bool:
    """Loopback addresses, ``localhost`` and Unix sockets stay on this machine."""
    proto, host, _ = parse(endpoint)
    if proto not in NETWORK_PROTOCOLS:
        return True
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: may resolve anywhere


def check_endpoints(endpoints: list[str], files: TlsFiles | None, own_config: bool) -> None:
    """Refuse a network endpoint that is not TLS, or TLS without certificates.

    ``own_config``: the user gave a Zenoh config file of their own (which may hold
    its own TLS settings), so only plain-text endpoints are refused.
    """
    for endpoint in endpoints:
        proto = parse(endpoint).proto
        if proto in ENCRYPTED:  # (on loopback too: Zenoh's own error named a missing private key)
            if files is None and not own_config:
                raise TlsSetupError(f"{endpoint} needs certificates: create them with `dora-zenoh certs` and "
                                    f"set {TLS_ENV}=/path/to/this-machine.pem (see docs/security.md)")
            continue
        if is_local(endpoint):
            continue
        if settings.INSECURE_NETWORK.get():
            if endpoint not in _warned:
                _warned.add(endpoint)
                from dora_zenoh.console import warn

                warn(f"{endpoint} is reachable from the network without encryption or authentication "
                     f"({INSECURE_ENV}=1): anyone who can reach it can read and publish on every key")
            continue
        _, host, port = parse(endpoint)
        raise InsecureEndpointError(
            f"{endpoint} would accept anyone on the network: use tls/{host}:{port} with certificates from "
            f"`dora-zenoh certs` ({TLS_ENV}=...), or set {INSECURE_ENV}=1 to accept plain {proto} "
            "(see docs/security.md)")


def zenoh_tls_json(files: TlsFiles) -> dict[str, object]:
    """``transport/link/tls`` for a peer that both listens and connects, both sides authenticated."""
    return {
        "root_ca_certificate": str(files.ca),
        "listen_private_key": str(files.key),
        "listen_certificate": str(files.cert),
        "connect_private_key": str(files.key),
        "connect_certificate": str(files.cert),
        "enable_mtls": True,
        "verify_name_on_connect": True,
    }


def certificate_problem(endpoint: str, files: TlsFiles, timeout: float = 3.0) -> str | None:
    """What is wrong with the certificates on a TLS link to ``endpoint``; None if nothing is
    (the handshake works, or nothing answers yet: a peer keeps retrying in the background)."""
    message = diagnose(endpoint, files, timeout)
    return None if message.startswith(("nothing answers", "the TLS handshake with")) else message


def diagnose(endpoint: str, files: TlsFiles, timeout: float = 3.0) -> str:
    """Why a TLS link to ``endpoint`` fails, naming the certificate to check."""
    import ssl

    _, host, port = parse(endpoint)
    if port is None:
        return f"cannot connect to {endpoint}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return f"nothing answers on {host}:{port} ({exc.strerror or exc}): is the other side running and reachable?"
    with raw:
        try:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.settimeout(1.0)
                try:
                    tls.recv(1)  # TLS 1.3: a refused client certificate shows up as an alert here
                except TimeoutError:
                    return (f"the TLS handshake with {host}:{port} succeeds with {files.cert} and {files.ca}; "
                            "Zenoh refused the link for another reason (versions? the other side's log)")
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code in (18, 19, 20, 21, 2):
                return (f"the certificate of {host}:{port} is not signed by your CA {files.ca}: check that both "
                        "machines got their certificates from the same `dora-zenoh certs ca` (and the "
                        f"certificate that machine uses), or that {files.ca} is that CA")
            if exc.verify_code == 62 or "mismatch" in str(exc.verify_message):
                return (f"the certificate of {host}:{port} does not name {host}: re-issue that machine's certificate "
                        f"with `dora-zenoh certs machine NAME --ip {host}` (or connect by a name it has)")
            if exc.verify_code == 10:
                return f"the certificate of {host}:{port} has expired: re-issue it with `dora-zenoh certs machine`"
            return f"the certificate of {host}:{port} is not accepted with your CA {files.ca}: {exc.verify_message}"
        except ssl.SSLError as exc:
            reason = (exc.reason or str(exc)).upper()
            if any(word in reason for word in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED",
                                               "CERTIFICATE_UNKNOWN", "DECRYPT_ERROR", "ACCESS_DENIED")):
                return (f"{host}:{port} refused your certificate {files.cert}: it is not signed by the CA that "
                        f"machine trusts; check {TLS_ENV} and that both machines' certificates come from the same "
                        "`dora-zenoh certs ca`")
            return f"TLS with {host}:{port} failed ({exc.reason or exc}); check {files.cert} and {files.ca}"
        except OSError as exc:
            return f"TLS with {host}:{port} failed ({exc}); check {files.cert} and {files.ca}"
    return (f"{host}:{port} closed the TLS connection: it probably refused your certificate {files.cert}; "
            f"check that it is signed by the CA that machine trusts")
