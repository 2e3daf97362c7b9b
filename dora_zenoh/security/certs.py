"""A small certificate authority for a robot and its offboard computers.

``dora-zenoh certs ca`` makes ``ca.pem`` + ``ca.key`` once (keep the key on one
trusted machine); ``dora-zenoh certs machine NAME --ip ...`` makes ``NAME.pem`` +
``NAME.key`` signed by it, valid both as a server and as a client (every Zenoh peer
listens and connects), naming the machine's addresses so that the other side can
check it reached the right machine. X.509 is built with the ``cryptography``
library (maintained, audited bindings to OpenSSL), never by hand. Keys are ECDSA
P-256: small, fast handshakes, accepted by Zenoh's rustls.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from dora_zenoh.errors import CertError

CA_DAYS = 3650
MACHINE_DAYS = 825  # the longest server-certificate life most TLS clients accept


@dataclass(frozen=True)
class Issued:
    """What was written: certificate, private key, and the names it carries."""

    cert: Path
    key: Path
    names: list[str]


def _write_private(path: Path, data: bytes) -> None:
    """A key file readable by its owner only, created that way (no window of 0644)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _refuse_existing(*paths: Path, force: bool) -> None:
    for path in paths:
        if path.exists():
            if not force:
                raise CertError(f"{path} already exists: keep it, or pass --force to replace it")
            path.unlink()


def _key_pem(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                             serialization.NoEncryption())


def make_ca(folder: Path, name: str = "dora-zenoh CA", force: bool = False) -> Issued:
    """A self-signed CA (``ca.pem``, ``ca.key``) that may sign machine certificates only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    _refuse_existing(cert_path, key_path, force=force)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path, [name])


def local_names() -> tuple[list[str], list[str]]:
    """This machine's addresses (every interface, loopback included) and host names."""
    import psutil

    ips: list[str] = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                ip = addr.address.split("%", 1)[0]
                if ip not in ips and not ipaddress.ip_address(ip).is_link_local:
                    ips.append(ip)
    host = socket.gethostname()
    return ips, [n for n in dict.fromkeys([host, "localhost"]) if n]


def make_machine(folder: Path, name: str, ips: list[str], dns: list[str], force: bool = False) -> Issued:
    """``NAME.pem`` + ``NAME.key``, signed by ``folder/ca.*``, for these addresses and names.

    Zenoh checks that the address a peer dialled is in the other side's certificate
    (``verify_name_on_connect``), so every address others will use must be listed.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not name or "/" in name or name.startswith(".") or name == "ca":
        raise CertError(f"'{name}' cannot name a machine's certificate: use a plain name such as 'robot'")
    ca_cert_path, ca_key_path = folder / "ca.pem", folder / "ca.key"
    if not ca_key_path.exists():
        raise CertError(f"no CA in {folder} (missing {ca_key_path}): create one with `dora-zenoh certs ca --dir "
                        f"{folder}`, or pass the --dir that holds it")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CertError(f"cannot read the CA in {folder}: {exc}") from None
    addresses = []
    for ip in ips:
        try:
            addresses.append(ipaddress.ip_address(ip))
        except ValueError:
            raise CertError(f"--ip {ip!r} is not an IP address (names go to --dns)") from None
    if not addresses and not dns:
        raise CertError("give at least one --ip or --dns the other machines will use to reach this one")
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    _refuse_existing(cert_path, key_path, force=force)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans: list[x509.GeneralName] = [x509.IPAddress(a) for a in addresses] + [x509.DNSName(d) for d in dns]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + datetime.timedelta(days=MACHINE_DAYS), ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path, [str(a) for a in addresses] + dns)


def describe(path: Path) -> str:
    """Subject, issuer, validity and names of a certificate (for ``certs show``)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertError(f"cannot read the certificate {path}: {exc}") from None
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in sans]
    except x509.ExtensionNotFound:
        names = []
    return (f"{path}\n  subject: {cert.subject.rfc4514_string()}\n  issuer:  {cert.issuer.rfc4514_string()}\n"
            f"  valid:   {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}\n"
            f"  names:   {', '.join(names) or '-'}")
