"""``dora-zenoh certs``: a CA and per-machine certificates for mutual TLS between machines."""
from __future__ import annotations

from pathlib import Path

import click

from dora_zenoh import settings
from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.options import CONTEXT
from dora_zenoh.errors import CertError
from dora_zenoh.security.certs import describe, local_names, make_ca, make_machine

DEFAULT_DIR = Path("certs")
dir_option = click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DIR,
                          show_default=True, help="Where the CA and the certificates are (ca.pem, ca.key, NAME.*).")


def _require_cryptography() -> None:
    """X.509 needs the optional ``cryptography`` library (the ``tls`` extra): say so, not a traceback."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise CliError("`dora-zenoh certs` needs the cryptography library: pip install 'dora-zenoh[tls]'") from None


@click.group(context_settings=CONTEXT)
def certs() -> None:
    """Certificates for TLS between machines (see docs/security.md).

    \b
    On one trusted machine:
      dora-zenoh certs ca
      dora-zenoh certs machine robot --ip 192.168.1.20
      dora-zenoh certs machine laptop --ip 192.168.1.30
    copy ca.pem, robot.pem and robot.key to the robot (never ca.key), then on each machine
      export DORA_ZENOH_TLS=/path/to/certs/<machine>.pem
    and use tls/ endpoints.
    """


@certs.command(context_settings=CONTEXT)
@dir_option
@click.option("--name", default="dora-zenoh CA", show_default=True, help="The CA's common name.")
@click.option("--force", is_flag=True, help="Replace an existing CA (every certificate it signed stops working).")
def ca(folder: Path, name: str, force: bool) -> None:
    """Create the certificate authority (ca.pem, and ca.key readable by you only)."""
    _require_cryptography()
    try:
        issued = make_ca(folder, name, force)
    except CertError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"CA certificate: {issued.cert}\nCA key:         {issued.key}  (keep it on this machine only)")


@certs.command(context_settings=CONTEXT)
@click.argument("name")
@dir_option
@click.option("--ip", "ips", multiple=True, metavar="ADDRESS", help="An address others use to reach it (repeat).")
@click.option("--dns", multiple=True, metavar="NAME", help="A host name others use to reach it (repeat).")
@click.option("--this-machine", is_flag=True, help="Add every address and the host name of the machine this runs on.")
@click.option("--force", is_flag=True, help="Replace existing NAME.pem/NAME.key.")
def machine(name: str, folder: Path, ips: tuple[str, ...], dns: tuple[str, ...], this_machine: bool,
            force: bool) -> None:
    """Create NAME.pem + NAME.key for one machine, signed by the CA in --dir."""
    _require_cryptography()
    all_ips, all_dns = list(ips), list(dns)
    if this_machine:
        here_ips, here_dns = local_names()
        all_ips += [i for i in here_ips if i not in all_ips]
        all_dns += [d for d in here_dns if d not in all_dns]
    try:
        issued = make_machine(folder, name, all_ips, all_dns, force)
    except CertError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"certificate: {issued.cert}\nkey:         {issued.key}\nnames:       {', '.join(issued.names)}\n"
               f"on that machine: export {settings.TLS.name}={issued.cert.resolve()}  (with ca.pem next to it)")


@certs.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def show(files: tuple[Path, ...]) -> None:
    """Print the subject, issuer, validity and names of certificates."""
    _require_cryptography()
    for path in files:
        try:
            click.echo(describe(path))
        except CertError as exc:
            raise CliError(str(exc)) from None


COMMANDS = [certs]
