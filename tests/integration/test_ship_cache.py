"""Shipping a folder between two real Zenoh sessions of this process (no root, no daemon): what the
manifest leaves out, chunked transfers, the content-addressed cache, and what it refuses."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import zenoh

from dora_zenoh.daemon.files import FileCache
from dora_zenoh.errors import ShipError
from dora_zenoh.supervision import ship
from dora_zenoh.wire import zconfig

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def link(endpoint: str) -> Iterator[tuple[ship.Server, zenoh.Session]]:
    """The coordinator's file server on one session, and a daemon's session linked to it."""
    server_session = zenoh.open(zconfig.peer_config([], [endpoint]))
    daemon_session = zenoh.open(zconfig.peer_config([endpoint], []))
    server = ship.Server(server_session)
    try:
        assert zconfig.wait_for_peers(daemon_session, 10.0)
        yield server, daemon_session
    finally:
        server.close()
        daemon_session.close()
        server_session.close()


def make_folder(root: Path) -> Path:
    (root / "nodes").mkdir(parents=True)
    (root / "flow.yml").write_text("nodes: []\n")
    (root / "nodes" / "a.py").write_text("print('a')\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "big.bin").write_bytes(os.urandom(ship.CHUNK * 2 + 12345))  # three chunks
    for skipped in (".git", "nodes/__pycache__", ".venv", "out/run1", "data"):
        (root / skipped).mkdir(parents=True, exist_ok=True)
        (root / skipped / "x").write_text("not shipped")
    (root / "nodes" / "a.pyc").write_text("not shipped")
    (root / "notes.log").write_text("not shipped")
    (root / ship.IGNORE_FILE).write_text("# comment\n*.log\n/data/\n")
    shared = root.parent / "shared"  # outside the folder, linked into it
    shared.mkdir()
    (shared / "util.py").write_text("X = 1\n")
    (root / "nodes" / "shared").symlink_to(shared)
    (shared / "loop").symlink_to(root)  # a link back up is walked once
    return root


def test_manifest_leaves_out_what_nodes_do_not_need_and_names_the_biggest_files(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "src")
    manifest, _ = ship.scan(root)
    assert sorted(manifest.files) == [ship.IGNORE_FILE, "big.bin", "flow.yml", "nodes/a.py", "nodes/shared/util.py",
                                      "run.sh"]
    assert manifest.files["run.sh"][2] and not manifest.files["flow.yml"][2]
    with pytest.raises(ShipError) as err:
        ship.scan(root, 1 << 20)
    assert "big.bin (2.0 MiB)" in str(err.value) and "DORA_ZENOH_SHIP_MAX_BYTES=1 MiB" in str(err.value)
    assert ship.IGNORE_FILE in str(err.value)


def test_copy_is_fetched_once_checked_and_never_half_written(tmp_path: Path,
                                                             link: tuple[ship.Server, zenoh.Session]) -> None:
    server, session = link
    root = make_folder(tmp_path / "src")
    cache = FileCache(tmp_path / "cache", session)

    # the same path: nothing to fetch
    offer = server.offer(root)
    same = cache.prepare(offer.for_daemon(), set())
    assert (same.root, same.copy, same.fetched_bytes) == (root, False, 0)

    # another path (this machine does not have the folder): a copy, every byte checked
    elsewhere = {**offer.for_daemon(), "root": str(tmp_path / "absent")}
    first = cache.prepare(elsewhere, set())
    assert first.copy and first.fresh and first.fetched_files == 6
    assert (first.root / "nodes" / "shared" / "util.py").read_text() == "X = 1\n"
    assert (first.root / "big.bin").read_bytes() == (root / "big.bin").read_bytes()
    assert os.access(first.root / "run.sh", os.X_OK) and not (first.root / "notes.log").exists()
    again = cache.prepare(elsewhere, set())
    assert (again.root, again.fresh, again.fetched_bytes) == (first.root, False, 0)
    server.withdraw(offer)

    # a small file that changes on the coordinator's side after the manifest: shipped as it was
    # hashed (kept in memory by the scan); a big one: refused, named, recorded, no copy left
    (root / "nodes" / "b.py").write_text("print('b')\n")
    (root / "big.bin").write_bytes(os.urandom(ship.KEEP_FILE + 5))  # content no copy has yet
    offer = server.offer(root)
    (root / "nodes" / "b.py").write_text("print('B, changed')\n")
    (root / "big.bin").write_bytes(os.urandom(ship.KEEP_FILE + 5))
    with pytest.raises(ShipError, match=r"big\.bin: chunk 1 of 2 did not arrive .*changed on the coordinator's "
                                        r"machine since the manifest"):
        cache.prepare({**offer.for_daemon(), "root": str(tmp_path / "absent")}, set())
    assert offer.changed == {"big.bin"}
    trees = sorted(p.name for p in (tmp_path / "cache" / "trees").iterdir() if p.is_dir())
    assert trees == [first.root.name]  # neither the new copy nor a staging folder remains
    server.withdraw(offer)
    offer = server.offer(root)
    (root / "nodes" / "b.py").write_text("print('B, changed again')\n")
    copy = cache.prepare({**offer.for_daemon(), "root": str(tmp_path / "absent")}, set())
    assert (copy.root / "nodes" / "b.py").read_text() == "print('B, changed')\n"  # the manifest's version

    # a manifest naming a path outside the copy (a coordinator gone wrong): refused before any write
    evil = ship.Offer(root, ship.Manifest({"../evil.py": (3, "0" * 64, False)}), {})
    server.offers[evil.token] = evil
    with pytest.raises(ShipError, match=r"lists '\.\./evil\.py', which is not a plain relative path"):
        cache.prepare({**evil.for_daemon(), "root": str(tmp_path / "absent")}, set())
    assert not (tmp_path / "cache" / "evil.py").exists()

    # an offer that ends mid-way (the start was given up): an error naming what did not arrive
    server.withdraw(offer)
    with pytest.raises(ShipError, match=r"the manifest: chunk 1 of 1 did not arrive .*no such offer"):
        cache.prepare({**offer.for_daemon(), "root": str(tmp_path / "absent")}, set())


def test_a_file_changed_while_shipped_gets_a_new_manifest_then_is_named(
        tmp_path: Path, link: tuple[ship.Server, zenoh.Session]) -> None:
    """prepare_machines with a daemon's real FileCache on the other session: a big file rewritten
    after the manifest was made is shipped on the next attempt; one rewritten at every attempt
    fails the start, named, with the ignore file as the fix."""
    from types import SimpleNamespace

    from dora_zenoh.errors import CommandError

    server, session = link
    root = make_folder(tmp_path / "src")
    desc = SimpleNamespace(base_dir=root, path=root / "flow.yml", nodes=[])  # (what prepare_machines reads)
    cache = FileCache(tmp_path / "cache", session)
    rewrites = {"left": 1}

    def call(machine: str, verb: str, timeout: float, **args: object) -> dict:
        assert verb == "prepare"
        if rewrites["left"]:  # a program writes it while the start ships the folder
            rewrites["left"] -= 1
            (root / "big.bin").write_bytes(os.urandom(ship.CHUNK + 7))
        files = {**args["files"], "root": str(tmp_path / "absent")}  # type: ignore[dict-item]
        try:
            prepared = cache.prepare(files, set())
        except ShipError as exc:
            raise CommandError(f"machine '{machine}' did not get the files: {exc}") from None
        return {"path": str(prepared.root), "copy": prepared.copy}

    answers, _ = ship.prepare_machines(server, desc, {"b": ["n"]}, "flow", False, call)
    assert (Path(answers["b"]["path"]) / "big.bin").read_bytes() == (root / "big.bin").read_bytes()

    rewrites["left"] = ship.ATTEMPTS
    (root / "big.bin").write_bytes(os.urandom(ship.CHUNK + 7))  # content no copy has yet
    with pytest.raises(CommandError) as err:
        ship.prepare_machines(server, desc, {"b": ["n"]}, "flow", False, call)
    assert "big.bin kept changing while the folder" in str(err.value), err.value
    assert str(root / ship.IGNORE_FILE) in str(err.value) and f"({ship.ATTEMPTS} attempts)" in str(err.value)
    assert not server.offers  # every offer withdrawn


def test_a_restart_gets_the_files_the_start_shipped_or_a_clear_error(
        tmp_path: Path, link: tuple[ship.Server, zenoh.Session]) -> None:
    """A start's offer kept (``keep_offer``) ships its own versions later (``pinned``) though the
    folder changed: a machine that restarts its nodes runs what the others run. A big file that
    was neither kept nor copied aside, and changed since, fails that restart, saying why."""
    from types import SimpleNamespace

    from dora_zenoh.errors import CommandError

    server, session = link
    root = make_folder(tmp_path / "src")
    desc = SimpleNamespace(base_dir=root, path=root / "flow.yml", nodes=[])
    caches = iter(range(10))

    def call(machine: str, verb: str, timeout: float, **args: object) -> dict:
        cache = FileCache(tmp_path / f"cache{next(caches)}", session)  # a machine with nothing cached
        files = {**args["files"], "root": str(tmp_path / "absent")}  # type: ignore[dict-item]
        try:
            prepared = cache.prepare(files, set())
        except ShipError as exc:
            raise CommandError(f"machine '{machine}' did not get the files: {exc}") from None
        return {"path": str(prepared.root)}

    start_a, start_big = (root / "nodes" / "a.py").read_bytes(), (root / "big.bin").read_bytes()
    answers, offer = ship.prepare_machines(server, desc, {"b": ["n"]}, "flow", False, call, keep_offer=True)
    assert offer is not None and not server.offers  # kept, not served
    (root / "nodes" / "a.py").write_text("print('edited')\n")
    (root / "big.bin").write_bytes(os.urandom(ship.CHUNK + 1))
    assert ship.changed_since(offer) == ["big.bin", "nodes/a.py"]
    again, same = ship.prepare_machines(server, desc, {"b": ["n"]}, "flow", False, call, pinned=offer)
    assert same is offer and not server.offers
    copy = Path(again["b"]["path"])
    assert (copy / "nodes" / "a.py").read_bytes() == start_a  # kept in memory from the start's scan
    assert (copy / "big.bin").read_bytes() == start_big  # copied aside when the start shipped it
    server.withdraw(offer)

    # A start whose machine had the big file already never had it copied aside: once it changes,
    # a restart cannot get the start's version.
    def cached(machine: str, verb: str, timeout: float, **args: object) -> dict:
        prepared = FileCache(tmp_path / "warm", session).prepare({**args["files"], "root": str(root)}, set())
        return {"path": str(prepared.root)}

    _, offer = ship.prepare_machines(server, desc, {"b": ["n"]}, "flow", False, cached, keep_offer=True)
    assert offer is not None
    (root / "big.bin").write_bytes(os.urandom(ship.CHUNK + 2))
    with pytest.raises(CommandError) as err:
        ship.prepare_machines(server, desc, {"b": ["n"]}, "flow", False, call, pinned=offer)
    assert "big.bin" in str(err.value), err.value
    assert ("big.bin changed on the coordinator's machine since the dataflow started, and the other machines run "
            "the start's version: stop and start the dataflow to run the new one") in str(err.value), err.value
    server.withdraw(offer)
    assert not server.offers
