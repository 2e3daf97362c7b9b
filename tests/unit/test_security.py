"""Security building blocks on real files: endpoint policy, certificates, request path checks."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dora_zenoh.security import access, control
from dora_zenoh.wire import auth, tls


@pytest.mark.parametrize("endpoint", ["tcp/127.0.0.1:7447", "tcp/[::1]:7447", "tcp/localhost:1",
                                      "unixsock-stream//tmp/x.sock"])
def test_local_endpoints_need_nothing(endpoint, monkeypatch):
    monkeypatch.delenv(tls.INSECURE_ENV, raising=False)
    tls.check_endpoints([endpoint], None, own_config=False)


def test_network_endpoints_need_tls_or_an_explicit_opt_out(monkeypatch, capsys):
    monkeypatch.delenv(tls.INSECURE_ENV, raising=False)
    with pytest.raises(tls.InsecureEndpointError, match="tls/10.0.0.1:7447 with certificates"):
        tls.check_endpoints(["tcp/10.0.0.1:7447"], None, own_config=False)
    with pytest.raises(tls.InsecureEndpointError):
        tls.check_endpoints(["tcp/0.0.0.0:7447"], None, own_config=False)
    for encrypted in ("tls/10.0.0.1:7447", "tls/127.0.0.1:7447"):  # (loopback: Zenoh's raw "Missing TLS private key")
        with pytest.raises(tls.TlsSetupError, match="needs certificates"):
            tls.check_endpoints([encrypted], None, own_config=False)
    monkeypatch.setenv(tls.INSECURE_ENV, "1")
    tls.check_endpoints(["tcp/10.0.0.2:7447"], None, own_config=False)
    assert "without encryption or authentication" in capsys.readouterr().err


def test_certificates_have_the_right_names_usages_and_permissions(tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from dora_zenoh.security import certs

    with pytest.raises(certs.CertError, match="no CA in"):
        certs.make_machine(tmp_path, "robot", ["10.0.0.1"], [])
    certs.make_ca(tmp_path)
    issued = certs.make_machine(tmp_path, "robot", ["10.0.0.1", "fd00::1"], ["robot.local"])
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.1", "fd00::1"]
    assert sans.get_values_for_type(x509.DNSName) == ["robot.local"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    for key in (tmp_path / "ca.key", issued.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(certs.CertError, match="already exists"):
        certs.make_machine(tmp_path, "robot", ["10.0.0.1"], [])
    with pytest.raises(certs.CertError, match="not an IP address"):
        certs.make_machine(tmp_path, "other", ["robot.local"], [])

    # the files DORA_ZENOH_TLS names are checked before anything opens
    monkeypatch.setenv(tls.TLS_ENV, str(issued.cert))
    assert tls.tls_files() == tls.TlsFiles(issued.cert, issued.key, tmp_path / "ca.pem")
    certs.make_machine(tmp_path, "laptop", ["10.0.0.2"], [])
    (tmp_path / "robot.key").unlink()
    (tmp_path / "laptop.key").rename(tmp_path / "robot.key")
    with pytest.raises(tls.TlsSetupError, match="cannot use the certificate .*robot.pem with the key"):
        tls.tls_files()


def test_closed_run_credentials_are_private_and_give_observers_read_only(tmp_path):
    secret = auth.make_secret()
    try:
        assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        member, acl = auth.session_auth(str(secret))
        assert member["dictionary_file"] == str(secret) and acl is not None
        observer, none = auth.session_auth(str(auth.observer_file(secret)))
        assert none is None and "dictionary_file" not in observer
        assert acl["subjects"][0]["usernames"] == [observer["user"]]
        assert observer["password"] not in secret.read_text().splitlines()[0]
    finally:
        auth.discard(secret)
    assert not secret.parent.exists()
    bad = tmp_path / "bad"
    bad.write_text("no-colon\n")
    with pytest.raises(auth.SecretError, match="user:password"):
        auth.session_auth(str(bad))


@pytest.fixture
def open_tmp():
    """A folder in /tmp others may enter (pytest's own are private to this user)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="dz-access-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_requests_may_only_name_paths_the_requester_could_use(open_tmp):
    tmp_path = open_tmp
    nobody = access.Requester(65534, frozenset({65534}))
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(shared, 0o777)
    (shared / "flow.yml").write_text("nodes: []\n")
    os.chmod(shared / "flow.yml", 0o644)
    assert access.check_writable_dir(str(shared / "new" / "logs"), nobody, "--log-dir") == shared / "new" / "logs"
    assert access.check_readable(str(shared / "flow.yml"), nobody, "the dataflow file") == shared / "flow.yml"
    if os.stat(tmp_path).st_uid != 65534:
        with pytest.raises(control.NotAuthorizedError, match="cannot write --log-dir"):
            access.check_writable_dir(str(private / "logs"), nobody, "--log-dir")
        os.chmod(shared / "flow.yml", 0o600)
        with pytest.raises(control.NotAuthorizedError, match="cannot read the dataflow file"):
            access.check_readable(str(shared / "flow.yml"), nobody, "the dataflow file")
    with pytest.raises(control.NotAuthorizedError, match="absolute"):
        access.check_writable_dir("relative/logs", nobody, "--log-dir")
    root = access.Requester(0, frozenset({0}))
    assert access.check_writable_dir(str(private / "logs"), root, "--log-dir")


def test_group_mode_accepts_only_root_the_owner_and_members():
    owner = os.getuid()
    assert access.authorize(None, owner, None).uid == owner  # owner-only: whoever got in is the owner
    assert access.authorize(12345, owner, None).uid == owner
    with pytest.raises(control.NotAuthorizedError, match="needs the requester's uid"):
        access.authorize(None, owner, 4242)
    with pytest.raises(control.NotAuthorizedError, match="not in the coordinator's group"):
        access.authorize(65534, owner, 4242)
    assert access.authorize(0, owner, 4242).uid == 0


def test_control_socket_path_follows_the_hub_port(monkeypatch, tmp_path):
    monkeypatch.setenv(control.BASE_ENV, str(tmp_path))
    monkeypatch.delenv(control.SOCKET_ENV, raising=False)
    assert control.socket_path("tcp/127.0.0.1:7447", 1000) == tmp_path / "dora-zenoh-1000" / "ctl-7447" / "sock"
    path = control.prepare("tcp/127.0.0.1:7447", None)
    assert path.parent.parent == tmp_path / f"dora-zenoh-{os.getuid()}"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # this coordinator's own directory
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o711  # passed through, never listed
    other = control.prepare("tcp/127.0.0.1:7448", None)  # a second coordinator keeps its own rule
    assert other.parent != path.parent and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    squatted = tmp_path / "elsewhere"
    squatted.mkdir()
    path.parent.rmdir()
    Path(path.parent).symlink_to(squatted)
    with pytest.raises(control.ControlDirError, match="someone else made it"):
        control.prepare("tcp/127.0.0.1:7447", None)


def test_credentials_of_a_killed_process_go_when_new_ones_are_made():
    """A process that makes credentials and is killed leaves them in /tmp (9 folders after one
    run of the test suite, each with a dead dataflow's password): the next process that makes
    some removes them; those of a living process stay."""
    import signal
    import subprocess
    import sys

    maker = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from dora_zenoh.wire import auth\n"
        "print(auth.make_secret(), flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        theirs = Path(maker.stdout.readline().strip())
        mine = auth.make_secret()
        try:
            assert theirs.exists()  # its process lives
            maker.send_signal(signal.SIGKILL)
            maker.wait(10)
            again = auth.make_secret()
            assert not theirs.parent.exists() and mine.exists() and again.exists()
            auth.discard(again)
        finally:
            auth.discard(mine)
    finally:
        maker.kill()
        maker.wait(10)
        maker.stdout.close()


def test_a_killed_coordinators_control_directory_goes_when_another_starts(tmp_path, monkeypatch):
    """A coordinator killed (SIGKILL) leaves its control socket and Zenoh's lock file beside it
    (118 such directories on the test VM after a day): the next coordinator of the user removes
    those no process listens on; a live one stays."""
    import signal
    import subprocess
    import sys
    import time

    monkeypatch.setenv(control.BASE_ENV, str(tmp_path))
    monkeypatch.delenv("DORA_ZENOH_CONTROL", raising=False)
    listen = ("import json, sys, time, zenoh\n"
              "from dora_zenoh.security import control\n"
              "s = zenoh.open(control.session_config(listen=[control.control_endpoint(sys.argv[1])]))\n"
              "print('up', flush=True)\n"
              "time.sleep(60)\n")
    paths = [control.prepare(f"tcp/127.0.0.1:{port}", None) for port in (1, 2)]
    procs = [subprocess.Popen([sys.executable, "-c", listen, str(p)], stdout=subprocess.PIPE, text=True)
             for p in paths]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "up"
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        dead, live = paths
        assert dead.is_socket() and dead.with_name("sock.lock").exists()  # what a kill leaves
        old = time.time() - 2 * control.STALE_AFTER
        for p in paths:
            os.utime(p.with_name("sock.lock"), (old, old))
        control.prepare("tcp/127.0.0.1:3", None)
        assert not dead.parent.exists()
        assert live.is_socket()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
            proc.stdout.close()
