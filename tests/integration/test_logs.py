"""Node logs under `dora-zenoh run`: rotation, and a full disk that neither blocks nor crashes."""
from __future__ import annotations

import os
import subprocess

import pytest

CHATTY = """
    import sys
    from dora import Node
    node = Node()
    for i in range({lines}):
        print(f"line {{i:06d}} " + "x" * 90)
    open({done!r}, "w").write("done")
"""


def chatty_flow(flow, lines: int, done: str) -> None:
    flow.write("dataflow.yml", """
        nodes:
          - id: chatty
            path: chatty.py
    """)
    flow.write("chatty.py", CHATTY.format(lines=lines, done=done))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["env", "cli"])
def test_node_log_rotates_at_its_size_limit(flow, tmp_path, how):
    """A node printing ~500 KB with a 50 kB limit and 2 backups leaves three files of at most
    50 kB each, the newest lines in the current one (limits from the environment or flags)."""
    chatty_flow(flow, 5000, str(tmp_path / "done"))
    logs = tmp_path / "logs"
    if how == "env":
        env = {**os.environ, "DORA_ZENOH_LOG_MAX_BYTES": "50000", "DORA_ZENOH_LOG_BACKUPS": "2"}
        res = flow.run("--quiet", "--log-dir", str(logs), env=env)
    else:
        res = flow.run("--quiet", "--log-dir", str(logs), "--log-max-size", "50000", "--log-max-files", "2")
    assert res.returncode == 0, res.stderr
    (run_dir,) = logs.iterdir()
    files = sorted(p.name for p in run_dir.iterdir())
    assert files == ["log_chatty.txt", "log_chatty.txt.1", "log_chatty.txt.2"]
    for name in files:
        assert (run_dir / name).stat().st_size <= 50000
    current = (run_dir / "log_chatty.txt").read_text().splitlines()
    assert current[-2].startswith("line 004999")  # the runner's own last line follows it
    older = (run_dir / "log_chatty.txt.1").read_text().splitlines()
    assert int(older[-1].split()[1]) + 1 == int(current[0].split()[1])


def test_output_without_newlines_is_cut_and_rotated_too(flow, tmp_path):
    """4 MB on stderr with no newline (a progress bar's carriage returns): cut into lines of at
    most logs.MAX_LINE, so the log rotates at its limit (it was one file of the whole output:
    200 MB past a 1 MiB limit, and the runner held it all in memory)."""
    flow.write("dataflow.yml", """
        nodes:
          - id: bar
            path: bar.py
    """)
    flow.write("bar.py", """
        import sys
        for i in range(40000):
            sys.stderr.write(f"\\r{i:06d} " + "#" * 93)
        sys.stderr.flush()
    """)
    logs = tmp_path / "logs"
    res = flow.run("--quiet", "--log-dir", str(logs), "--log-max-size", "200000", "--log-max-files", "2")
    assert res.returncode == 0, res.stderr
    (run_dir,) = logs.iterdir()
    files = sorted(p.name for p in run_dir.iterdir())
    assert files == ["log_bar.txt", "log_bar.txt.1", "log_bar.txt.2"]
    for name in files:
        assert (run_dir / name).stat().st_size <= 200000
    assert "039999 ####" in (run_dir / "log_bar.txt").read_text()  # the newest output is in the current file


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (root only), unmounted afterwards even if the test fails."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.timeout(120)
def test_full_log_disk_drops_lines_without_blocking_the_node_or_crashing_run(flow, tmp_path, tiny_disk):
    """~3 MB of output into a 1 MiB log disk: the node runs to its end, `run` reports success,
    and says once that lines were dropped, with their count (before: the node blocked on
    stdout and `run` crashed with an OSError traceback)."""
    done = tmp_path / "done"
    chatty_flow(flow, 30000, str(done))
    res = flow.run("--quiet", "--log-dir", str(tiny_disk), timeout=100)
    assert done.exists()
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert res.stderr.count("cannot write") == 1, res.stderr[-3000:]
    assert "log line(s) could not be written" in res.stderr


@pytest.mark.timeout(120)
def test_a_reader_of_runs_output_that_does_not_read_never_blocks_the_node(flow, tmp_path):
    """`run`'s stdout is a pipe nobody reads (a paused `less`, a stuck log shipper): the node's
    30,000 lines (~3 MB) still all get printed by the node, which ends; the lines the terminal
    could not take are dropped and counted. Before, the echo waited for the pipe under the lock
    every node's pump needs: every node's print blocked (7.5 s for an 8 s pause, a helper's runs)."""
    from conftest import start_cli, wait_for

    done = tmp_path / "done"
    chatty_flow(flow, 30000, str(done))
    proc = start_cli("run", str(flow.yaml), "--name", flow.name, "--endpoint", flow.endpoint, cwd=flow.folder)
    try:
        wait_for(done.exists, 60, "the node to print its every line while nobody reads run's output")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "lines are dropped and counted" in err and "log line(s) could not be written" in err, err[-3000:]
