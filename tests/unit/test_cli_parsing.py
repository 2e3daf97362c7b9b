"""The CLI's option parsing and error exits, through click's own CliRunner (no coordinator, no Zenoh).

Usage errors are click's (exit 2, ``Error: ...``); failures the user can fix are
``error: ...`` (or a descriptor's problem list as is) with exit 1, never a traceback.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dora_zenoh.cli import _Main, main
from dora_zenoh.cli.errors import CliError, ProblemsError
from dora_zenoh.errors import DoraZenohError

FIXTURES = Path(__file__).parent / "descriptor" / "files"
COMMANDS = sorted(main.commands)
TAKES_GRACE = sorted(name for name, cmd in main.commands.items()
                     if any("--grace" in p.opts for p in cmd.params))


def invoke(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), env=env)


def good_dataflow(folder: Path) -> Path:
    (folder / "node.py").write_text("print('hi')\n")
    path = folder / "dataflow.yml"
    path.write_text("nodes:\n  - id: node\n    path: node.py\n")
    return path


def test_every_command_is_listed():
    res = invoke("--help")
    assert res.exit_code == 0
    assert set(COMMANDS) == {"check", "run", "up", "down", "coordinator", "daemon", "start", "join", "stop", "restart",
                             "list", "logs", "clean", "topic", "node", "graph", "top", "build", "certs", "record",
                             "replay", "bag", "foxglove", "machines"}
    for name in COMMANDS:
        assert f"  {name} " in res.output, name


@pytest.mark.parametrize("name", COMMANDS)
def test_help_of_every_command_lists_its_options(name):
    command = main.commands[name]
    for flag in ("--help", "-h"):
        res = invoke(name, flag)
        assert res.exit_code == 0, res.output
        assert res.output.startswith(f"Usage: main {name} "), res.output
        options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
        for option in options:
            for opt in option.opts + option.secondary_opts:
                assert opt in res.output, f"{name} --help does not list {opt}"
        assert "--help" in res.output


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0 and res.output.startswith("dora-zenoh, version ")


@pytest.mark.parametrize("name", TAKES_GRACE)
def test_bad_grace_is_a_usage_error_naming_the_fix(name, tmp_path):
    assert TAKES_GRACE == ["down", "restart", "run", "start", "stop"]
    args = {"run": [str(good_dataflow(tmp_path))], "start": [str(good_dataflow(tmp_path))],
            "stop": ["flow"], "restart": ["flow"], "down": []}[name]
    res = invoke(name, *args, "--grace", "soon")
    assert res.exit_code == 2, res.output
    assert ("Invalid value for '--grace': 'soon' is not a duration: use e.g. 10s, 500ms, 2m or 1h"
            in res.stderr)
    assert res.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["run"], "Missing argument 'FILE'"),
    (["run", "x.yml", "--stop-after", "-1s"], "'-1s' is not a duration"),
    (["run", "x.yml", "--cpu-latency-us", "-1"], "Invalid value for '--cpu-latency-us'"),
    (["run", "x.yml", "--cpu-latency-us", "99999999999"], "is not in the range 0<=x<=2147483647"),
    (["logs", "flow", "node", "--tail", "some"], "Invalid value for '--tail'"),
    (["run", "x.yml", "--log-max-size", "16M"], "'16M' is not a size: use e.g. 4096, 64KiB, 10MiB or 1GB"),
    (["run", "x.yml", "--log-max-files", "-1"], "Invalid value for '--log-max-files'"),
    (["check", "x.yml", "--nope"], "--nope"),
    (["frobnicate"], "No such command 'frobnicate'"),
    # a wait the platform cannot make: OverflowError in the runner before
    (["run", "x.yml", "--stop-after", "99999999999999s"], "is too long a duration: at most 1000000000 s"),
    # a measuring window of no time (or less): `time.sleep(-1)`'s ValueError traceback before
    (["node", "list", "--interval", "-1"], "'-1' is not a duration"),
    (["node", "info", "n", "--interval", "0"], "'0' is no time at all: give more than 0"),
    (["top", "--once", "-i", "0ms"], "'0ms' is no time at all"),
    (["topic", "hz", "n/o", "-w", "0"], "'0' message(s): a rate needs 2 at least"),  # (a count, as in ros2)
    (["topic", "hz", "n/o", "-w", "0s"], "'0s' is no time at all"),
    (["topic", "list", "-v", "--window", "0s"], "'0s' is no time at all"),
    # 0 was taken for "no limit" (a falsy value): a run that never stopped, an echo that never timed out
    (["run", "x.yml", "--stop-after", "0s"], "'0s' is no time at all"),
    (["topic", "echo", "n/o", "--timeout", "0"], "'0' is no time at all"),
    (["topic", "bw", "n/o", "--duration", "0ms"], "'0ms' is no time at all"),
    (["record", "flow", "n/o", "--duration", "0"], "'0' is no time at all"),
    (["record", "flow", "n/o", "--split-duration", "0s"], "'0s' is no time at all"),
    # 1/rate seconds between messages: nan passed click's FloatRange, 1e-300 overflowed the sleep
    (["topic", "pub", "n/o", "1", "--rate", "nan"], "'nan' must be a number of messages per second above 0"),
    (["topic", "pub", "n/o", "1", "-r", "1e-300", "-n", "2"], "'1e-300' must be a number of messages per second"),
    (["topic", "pub", "n/o", "1", "-r", "0"], "'0' must be a number of messages per second above 0"),
    (["topic", "pub", "n/o", "1", "-r", "fast"], "'fast' is not a number of messages per second"),
])
def test_usage_errors_exit_2(args, message):
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr


def test_check_of_a_good_file(tmp_path):
    path = good_dataflow(tmp_path)
    res = invoke("check", str(path))
    assert res.exit_code == 0, res.output
    assert res.stdout == f"{path}: ok\n"


def test_check_of_a_bad_file_lists_every_problem_and_exits_1(tmp_path):
    shutil.copy(FIXTURES / "many_problems.yml", tmp_path / "dataflow.yml")
    (tmp_path / "camera.py").write_text("")
    (tmp_path / "plot.py").write_text("")
    res = invoke("check", str(tmp_path / "dataflow.yml"))
    assert res.exit_code == 1
    assert res.stdout == ""
    for problem in ("unknown key 'ouputs'", "node id 'camera' is used twice", "which does not exist",
                    "unknown timer unit 'minutes'", "node id 'bad/id' is not a valid id",
                    "path 'missing.py' does not exist"):
        assert problem in res.stderr, problem
    assert "9 problems found in" in res.stderr
    assert not res.stderr.startswith("error:")  # the report is printed as is
    assert "Traceback" not in res.output


@pytest.mark.parametrize("verb", ["check", "run", "start"])
def test_a_missing_file_exits_1_before_anything_starts(verb, tmp_path):
    missing = tmp_path / "nope.yml"
    res = invoke(verb, str(missing), "--endpoint", "tcp/127.0.0.1:1") if verb == "start" else invoke(verb,
                                                                                                      str(missing))
    assert res.exit_code == 1, res.output
    assert f"{missing}: file not found" in res.stderr
    assert "1 problem found" in res.stderr
    assert "no coordinator" not in res.stderr  # `start` checks the file before asking a coordinator
    assert "Traceback" not in res.output


def test_run_without_a_writable_log_dir_is_an_error_not_a_traceback(tmp_path):
    path = good_dataflow(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # nothing can be created under a regular file, not even by root
    res = invoke("run", str(path), "--log-dir", str(blocker / "logs"),
                 env={"XDG_STATE_HOME": str(blocker / "state")})
    assert res.exit_code == 1, res.output
    assert res.stderr.startswith(f"error: cannot create a log directory for the run in {blocker / 'logs'}")
    assert "pass --log-dir with a directory you can write to" in res.stderr
    assert "Traceback" not in res.output


def test_up_with_an_unwritable_log_file_says_so_and_starts_nothing(tmp_path):
    from dora_zenoh.wire import zconfig

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = invoke("up", "--endpoint", zconfig.free_tcp_endpoint(), "--log-file", str(blocker / "c.log"))
    assert res.exit_code == 1, res.output
    assert res.stderr == (f"error: cannot write the coordinator's log {blocker / 'c.log'} (Not a directory); "
                          "pass --log-file with a file you can write\n")


def _group_raising(exc: Exception) -> click.Group:
    group = _Main("main")

    @group.command()
    def boom() -> None:
        raise exc

    return group


@pytest.mark.parametrize(("exc", "stderr"), [
    (CliError("it broke; do this"), "error: it broke; do this\n"),
    (ProblemsError("x.yml:3: a problem\n1 problem found in x.yml"), "x.yml:3: a problem\n1 problem found in x.yml\n"),
    (DoraZenohError("a message for the user"), "error: a message for the user\n"),
])
def test_errors_reach_the_user_as_their_message_with_exit_1(exc, stderr):
    res = CliRunner().invoke(_group_raising(exc), ["boom"])
    assert res.exit_code == 1
    assert res.stderr == stderr
    assert res.stdout == ""


def test_a_result_code_is_an_exit_not_an_error():
    group = _Main("main")

    @group.command()
    def result() -> None:
        raise click.exceptions.Exit(1)

    res = CliRunner().invoke(group, ["result"])
    assert res.exit_code == 1 and res.output == ""


@pytest.mark.parametrize("verb", ["run", "start"])
def test_secure_flag_and_its_variable_are_listed(verb):
    res = invoke(verb, "--help")
    assert res.exit_code == 0 and "--secure" in res.output and "DORA_ZENOH_SECURE" in res.output


def test_certs_without_a_ca_is_an_error_naming_the_fix_not_a_traceback(tmp_path):
    pytest.importorskip("cryptography")
    res = invoke("certs", "machine", "robot", "--ip", "127.0.0.1", "--dir", str(tmp_path))
    assert res.exit_code == 1, res.output
    assert res.output.startswith("error: no CA in ") and "dora-zenoh certs ca --dir" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "robot.key").exists()


def test_daemon_takes_its_settings_from_the_environment():
    # a systemd unit may set DORA_ZENOH_MACHINE_ID/COORDINATOR/DAEMON_LISTEN instead of options
    env = {"DORA_ZENOH_MACHINE_ID": "bad id!", "DORA_ZENOH_COORDINATOR": "tcp/127.0.0.1:9"}
    result = invoke("daemon", env=env)
    assert result.exit_code == 1 and "--machine-id 'bad id!'" in result.output, result.output
    env = {"DORA_ZENOH_MACHINE_ID": "robot", "DORA_ZENOH_COORDINATOR": "tcp/127.0.0.1:9",
           "DORA_ZENOH_DAEMON_LISTEN": "tcp/10.1.2.3:7448", "DORA_ZENOH_INSECURE_NETWORK": ""}
    result = invoke("daemon", env=env)
    assert result.exit_code == 1 and "--listen tcp/10.1.2.3:7448 sends the dataflow's data" in result.output
    assert "Missing option" in invoke("daemon", env={"DORA_ZENOH_MACHINE_ID": "robot"}).output


def test_a_daemon_of_a_network_coordinator_refuses_a_loopback_hub():
    # its nodes would be out of the other machines' reach, and open to any local user
    env = {"DORA_ZENOH_MACHINE_ID": "robot", "DORA_ZENOH_COORDINATOR": "tls/10.1.2.3:7447"}
    result = invoke("daemon", env=env)  # the default --listen: tcp/127.0.0.1:7448
    assert result.exit_code == 1, result.output
    assert ("--listen tcp/127.0.0.1:7448 is reachable from this machine only, but the coordinator "
            "tls/10.1.2.3:7447 is on the network" in result.output), result.output
    assert "--listen tls/ADDRESS:7448" in result.output and "Traceback" not in result.output


def test_up_takes_a_machine_id_or_no_daemon_not_both():
    result = invoke("up", "--machine-id", "robot", "--no-daemon", "--endpoint", "tcp/127.0.0.1:1")
    assert result.exit_code == 1, result.output
    assert "--machine-id names the daemon that --no-daemon declines: pick one" in result.output
    assert "Traceback" not in result.output
    result = invoke("up", "--endpoint", "tcp/127.0.0.1:1", env={"DORA_ZENOH_MACHINE_ID": "no id!"})
    assert result.exit_code == 1 and "--machine-id 'no id!': use letters" in result.output, result.output


def test_ups_machine_id_is_the_variable_else_the_host_name(monkeypatch):
    import socket

    from dora_zenoh.descriptor.rules.deploy import MACHINE_ID
    from dora_zenoh.supervision.home import machine_id as default_machine_id

    monkeypatch.setenv("DORA_ZENOH_MACHINE_ID", "robot")
    assert default_machine_id() == "robot"
    monkeypatch.delenv("DORA_ZENOH_MACHINE_ID")
    assert default_machine_id() == socket.gethostname()  # this host's name is a valid id
    monkeypatch.setattr(socket, "gethostname", lambda: "robot #2")
    assert default_machine_id() == "robot--2" and MACHINE_ID.match(default_machine_id())
    monkeypatch.setattr(socket, "gethostname", lambda: "...")
    assert default_machine_id() == "local"


@pytest.mark.parametrize("args, env", [
    (["list"], {"DORA_ZENOH_ENDPOINT": "garbage"}),
    (["list", "--endpoint", "tcp/127.0.0.1:notaport"], {}),
    (["daemon", "--machine-id", "m", "--coordinator", "tcp/10.0.0.1"], {}),
    (["record", "x", "-o", "x.mcap"], {"DORA_ZENOH_ENDPOINT": "garbage"}),
])
def test_an_endpoint_that_is_not_one_is_refused_with_its_form(args, env):
    """Zenoh's own error for these was a raw Json5Err (or a ValueError traceback for a bad port)."""
    result = invoke(*args, env=env)
    assert result.exit_code in (1, 2), result.output
    assert "is not an endpoint" in result.output and "e.g. tcp/127.0.0.1:7447" in result.output, result.output
    assert "Traceback" not in result.output and "Json5Err" not in result.output


@pytest.mark.parametrize("endpoint", ["tcp/127.0.0.1:7447", "tls/[fe80::1%eth0]:7447#iface=eth0",
                                      "unixsock-stream/tmp/dz.sock", "tcp/robot.local:7447?prio=1"])
def test_endpoints_zenoh_reads_are_accepted(endpoint):
    from dora_zenoh import settings

    assert settings.parse_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("args, env", [
    (["daemon", "--machine-id", "m", "--coordinator", "tls/10.0.0.1:7447", "--listen", "tls/0.0.0.0:7448"], {}),
    (["up"], {"DORA_ZENOH_ENDPOINT": "tcp/[::]:7447"}),
])
def test_a_wildcard_endpoint_is_refused_with_this_machines_addresses(args, env):
    """A daemon given `--listen tls/0.0.0.0:7448` started, and its nodes, which dial their hub
    where it listens, died: "the certificate of 0.0.0.0:59937 does not name 0.0.0.0"."""
    result = invoke(*args, env=env)
    assert result.exit_code == 2, result.output
    assert "is a wildcard address: sessions dial this endpoint too" in result.output, result.output
    assert "/127.0.0.1:74" in result.output and "Traceback" not in result.output
