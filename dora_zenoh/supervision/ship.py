"""Shipping a dataflow's folder to the machines of its placed nodes, over Zenoh (coordinator side).

A node placed on another machine needs its files there. The coordinator makes a
*manifest* of the YAML's folder (relative path, size, sha256 and executable bit of every
file, minus what :data:`SKIP_DIRS`, :data:`SKIP_FILES` and a ``.dora-zenoh-ignore`` leave
out) and *offers* it: a queryable under ``dora/@dz/files/<token>/<sha256>/<chunk>`` answers
with chunk ``chunk`` (:data:`CHUNK` bytes) of the file whose content has that sha256, the
manifest itself included. ``token`` is random and given only to the daemons of the
dataflow's machines, in their ``spawn`` command: a session that was not told it cannot
fetch anything, and an offer ends when the start does. Each daemon compares the manifest
with the same path on its machine and fetches only what differs (:mod:`dora_zenoh.daemon.files`).

What is served is what was hashed, even if a file changes meanwhile (a log, a recording, an
editor's save): a small file is kept in memory as it was read for the manifest; a bigger one is
copied aside when first asked for, and its copy's sha256 checked. A file that no longer has
the manifest's content is refused (the daemon names it) and recorded in the offer;
:func:`prepare_machines` then makes a new manifest and tries again, a bounded number of
times, before it fails naming the file and the ignore file. The links between the
coordinator and the daemons are the machines' mutual-TLS links.

A start's offer is kept until the dataflow ends: a machine that restarts its nodes later (its
daemon came back) gets the files the other machines started with, even if the folder changed.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh import settings
from dora_zenoh.descriptor.placement import placement_of
from dora_zenoh.errors import CommandError, DoraZenohError, ShipError
from dora_zenoh.units import format_size
from dora_zenoh.wire import keys

CHUNK = 1 << 20  # bytes per reply: well below what one Zenoh reply carries, so a slow link times out less
IGNORE_FILE = ".dora-zenoh-ignore"
# Never shipped: version control, caches, virtual environments (machine-specific: rebuild them with
# `build:`), and `out/`, where runs write their logs.
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache",
                       ".pytest_cache", ".ruff_cache"})
SKIP_TOP = frozenset({"out"})
SKIP_FILES = ("*.pyc", "*.pyo", ".DS_Store")
READ_BLOCK = 1 << 20
KEEP_FILE = 1 << 20  # files up to this size are kept in memory from the scan: served exactly as hashed
KEEP_TOTAL = 64 << 20  # ... up to this much in all per offer; bigger files are copied aside when asked for
ATTEMPTS = 3  # manifests made for one start when files keep changing while they are shipped
OFFER_FILE = "offer.json"  # a kept offer's root and manifest (Offer.keep_in)


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_hashed(path: Path, keep: bool) -> tuple[int, str, bytes | None]:
    """(size, sha256, content if ``keep``) of one read of ``path``: the size is what was read,
    so a file growing meanwhile still has a size and sha256 that agree."""
    digest = hashlib.sha256()
    blocks: list[bytes] = []
    size = 0
    with open(path, "rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
            size += len(block)
            if keep:
                blocks.append(block)
    return size, digest.hexdigest(), b"".join(blocks) if keep else None


def read_ignore(root: Path) -> list[str]:
    """The patterns of ``root/.dora-zenoh-ignore``: one per line, ``#`` comments (gitignore's basics:
    ``name`` matches at any depth, ``a/b`` or ``/a`` from the folder, a trailing ``/`` is allowed)."""
    try:
        text = (root / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether the relative path ``rel`` (``/``-separated) matches one of ``patterns``."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        pat = pattern.rstrip("/")
        if "/" in pat:
            if fnmatch.fnmatchcase(rel, pat.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pat):
            return True
    return False


@dataclass
class Manifest:
    """What a folder holds: ``files`` maps a relative path to ``(size, sha256, executable)``."""

    files: dict[str, tuple[int, str, bool]]

    def to_bytes(self) -> bytes:
        rows = [[rel, size, sha, x] for rel, (size, sha, x) in sorted(self.files.items())]
        return json.dumps({"version": 1, "files": rows}, separators=(",", ":")).encode()

    @staticmethod
    def from_bytes(raw: bytes) -> Manifest:
        data = json.loads(raw)
        return Manifest({str(r[0]): (int(r[1]), str(r[2]), bool(r[3])) for r in data["files"]})

    @property
    def digest(self) -> str:
        """The sha256 of :meth:`to_bytes`: the identity of the folder's shipped content."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def size(self) -> int:
        return sum(size for size, _, _ in self.files.values())


def scan(root: Path, limit: int | None = None,
         kept: dict[str, bytes] | None = None) -> tuple[Manifest, dict[str, Path]]:
    """The manifest of ``root`` and where each sha256's content is; ShipError past ``limit`` bytes,
    naming the biggest files, the setting and the ignore file. ``kept``, if given, receives the
    content of the small files as hashed (KEEP_FILE, KEEP_TOTAL)."""
    patterns = read_ignore(root)
    files: dict[str, tuple[int, str, bool]] = {}
    where: dict[str, Path] = {}
    sizes: list[tuple[int, str]] = []
    reals: dict[Path, str] = {}  # each folder walked -> its real path: a link to an ancestor must not loop
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        base = Path(dirpath)
        real = reals[base] = os.path.realpath(dirpath)
        if any(reals.get(parent) == real for parent in base.parents):
            dirnames[:] = []
            continue
        rel_dir = base.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not (rel_dir == "" and d in SKIP_TOP)
                             and not ignored(rel_dir + d, patterns))
        for name in sorted(filenames):
            rel = rel_dir + name
            if any(fnmatch.fnmatchcase(name, p) for p in SKIP_FILES) or ignored(rel, patterns):
                continue
            path = base / name
            try:
                st = path.stat()  # follows a symbolic link: its target's content is shipped (folders too)
            except OSError:
                continue  # a dangling link
            if not path.is_file() or not os.access(path, os.R_OK):
                continue  # (what the coordinator cannot read, its nodes could not either)
            sizes.append((st.st_size, rel))
            files[rel] = (st.st_size, "", bool(st.st_mode & 0o111))
    total = sum(s for s, _ in sizes)
    if limit is not None and total > limit:
        biggest = ", ".join(f"{rel} ({format_size(s)})" for s, rel in sorted(sizes, reverse=True)[:5])
        raise ShipError(f"the dataflow's folder {root} holds {format_size(total)} to ship to its other machines, "
                        f"more than {settings.SHIP_MAX_BYTES.name}={format_size(limit)}; the biggest files: "
                        f"{biggest}. List what the nodes do not need in {root / IGNORE_FILE} (one pattern a "
                        f"line, as in .gitignore), or raise {settings.SHIP_MAX_BYTES.name}")
    budget = KEEP_TOTAL
    for rel, (size, _, x) in list(files.items()):
        keep = kept is not None and size <= KEEP_FILE and size <= budget
        try:
            size, sha, content = read_hashed(root / rel, keep)
        except FileNotFoundError:
            del files[rel]  # removed since it was listed (a temporary file): not part of the folder
            continue
        except OSError as exc:
            raise ShipError(f"cannot read {root / rel} to ship it: {exc.strerror}") from None
        files[rel] = (size, sha, x)
        where.setdefault(sha, root / rel)
        if kept is not None and content is not None and len(content) <= budget:
            kept.setdefault(sha, content)
            budget -= len(content)
    return Manifest(files), where


class Changed(Exception):
    """A file no longer has the content its manifest lists."""


@dataclass
class Offer:
    """One folder offered to some machines while a dataflow starts there."""

    root: Path
    manifest: Manifest
    where: dict[str, Path]
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    raw: bytes = b""
    kept: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content, as hashed by the scan
    changed: set[str] = field(default_factory=set)  # files found changed since the manifest

    def __post_init__(self) -> None:
        self.raw = self.manifest.to_bytes()
        self.manifest_sha = hashlib.sha256(self.raw).hexdigest()
        self._copies: dict[str, Path] = {}  # sha256 -> its copy aside (bigger files)
        self._copy_lock = threading.Lock()
        self._dir: str | None = None

    def for_daemon(self) -> dict[str, Any]:
        """What the ``spawn`` command carries: where to fetch, and what must arrive."""
        return {"token": self.token, "manifest": self.manifest_sha, "manifest_size": len(self.raw),
                "root": str(self.root)}

    def chunk(self, sha: str, index: int) -> bytes:
        """Chunk ``index`` of the content whose sha256 is ``sha`` (KeyError: not offered;
        Changed: the file no longer has that content)."""
        start = index * CHUNK
        if sha == self.manifest_sha:
            return self.raw[start:start + CHUNK]
        if sha in self.kept:
            return self.kept[sha][start:start + CHUNK]
        with open(self._copy(sha), "rb") as f:
            f.seek(start)
            return f.read(CHUNK)

    def _copy(self, sha: str) -> Path:
        """The content ``sha`` copied aside at its first request (checked against the manifest), so
        that its chunks come from one version of the file however long the transfer takes."""
        with self._copy_lock:
            copy = self._copies.get(sha)
            if copy is not None:
                return copy
            source = self.where[sha]
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="dz-ship-")
            copy = Path(self._dir) / sha
            digest = hashlib.sha256()
            with open(source, "rb") as src, open(copy, "wb") as dst:
                while block := src.read(READ_BLOCK):
                    digest.update(block)
                    dst.write(block)
            if digest.hexdigest() != sha:
                copy.unlink(missing_ok=True)
                self.changed.add(source.relative_to(self.root).as_posix()
                                 if source.is_relative_to(self.root) else str(source))
                raise Changed(str(source))
            self._copies[sha] = copy
            return copy

    def keep_in(self, folder: Path) -> None:
        """Keep this offer on disk in ``folder`` (created owner-only): its small files' content, the
        copies aside made so far and from now on, and last (so that a half-kept offer is none) its
        manifest and root. :func:`restore` serves it again from there (keptoffers); OSError if it
        cannot be written."""
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sha, content in self.kept.items():
            _write_atomic(folder / sha, content)
        with self._copy_lock:
            for sha, copy in list(self._copies.items()):
                target = folder / sha
                shutil.move(copy, target)
                self._copies[sha] = target
            old, self._dir = self._dir, str(folder)
        if old is not None and old != str(folder):
            shutil.rmtree(old, ignore_errors=True)
        _write_atomic(folder / OFFER_FILE, json.dumps({"root": str(self.root), "manifest": self.raw.decode()}).encode())

    def discard(self) -> None:
        """Remove the copies made aside (the offer is over)."""
        with self._copy_lock:
            self._copies.clear()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None


def restore(folder: Path) -> Offer | None:
    """The offer :meth:`Offer.keep_in` kept in ``folder``, served from its copies there (and from its
    folder, checked against the manifest, for a big file never copied); None if there is none. What
    a daemon receives is checked against the manifest there too."""
    try:
        data = json.loads((folder / OFFER_FILE).read_bytes())
        root, manifest = Path(data["root"]), Manifest.from_bytes(data["manifest"].encode())
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    where = {sha: root / rel for rel, (_, sha, _) in sorted(manifest.files.items())}
    offer = Offer(root, manifest, where)
    offer._dir = str(folder)
    for sha in where:
        if (folder / sha).is_file():
            offer._copies[sha] = folder / sha
    return offer


def _write_atomic(path: Path, content: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as f:
        f.write(content)
    os.replace(temp, path)


class Server:
    """The coordinator's file queryable: declared once on its hub session, serving the current offers."""

    def __init__(self, session: zenoh.Session) -> None:
        self.session = session
        self.offers: dict[str, Offer] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="dz-ship")  # disk reads off Zenoh's threads
        self.queryable = session.declare_queryable(keys.files_key("*", "*", "*"),
                                                   zenoh.handlers.Callback(self._on_query, indirect=False))

    def offer(self, root: Path) -> Offer:
        """Scan ``root`` (ShipError past the size limit) and serve it until :meth:`withdraw`."""
        kept: dict[str, bytes] = {}
        manifest, where = scan(root, settings.SHIP_MAX_BYTES.get(), kept)
        offer = Offer(root, manifest, where, kept=kept)
        with self.lock:
            self.offers[offer.token] = offer
        return offer

    def serve(self, offer: Offer) -> None:
        """Serve an offer made earlier again (a dataflow's start's, for a restart)."""
        with self.lock:
            self.offers[offer.token] = offer

    def withdraw(self, offer: Offer, discard: bool = True) -> None:
        """Stop serving ``offer``; ``discard=False`` keeps its copies for a later :meth:`serve`."""
        with self.lock:
            self.offers.pop(offer.token, None)
        if discard:
            offer.discard()

    def close(self) -> None:
        try:
            self.queryable.undeclare()
        except zenoh.ZError:
            pass
        self.pool.shutdown(wait=False)

    def _on_query(self, query: zenoh.Query) -> None:
        try:
            self.pool.submit(self._answer, query)
        except RuntimeError:  # shut down
            query.drop()

    def _answer(self, query: zenoh.Query) -> None:
        key = str(query.key_expr)
        try:
            token, sha, index = key.rsplit("/", 3)[1:]
            with self.lock:
                offer = self.offers.get(token)
            if offer is None:
                query.reply_err(b"no such offer (the start it belonged to is over)")
                return
            try:
                data = offer.chunk(sha, int(index))
            except (KeyError, ValueError):
                query.reply_err(b"no such file in this offer")
                return
            except Changed:
                query.reply_err(b"it changed on the coordinator's machine since the manifest was made")
                return
            except OSError as exc:
                query.reply_err(f"cannot read it on the coordinator's machine: {exc.strerror}".encode())
                return
            query.reply(key, data)
        except zenoh.ZError:
            pass
        finally:
            query.drop()


PREPARE_TIMEOUT = 600.0  # seconds a machine may take to fetch the files and run its nodes' builds


def prepare_machines(server: Server, desc: Any, parts: dict[str, list[str]], name: str, build: bool,
                     call: Callable[..., dict[str, Any]], keep: bool = True,
                     beside: frozenset[str] = frozenset(), pinned: Offer | None = None,
                     keep_offer: bool = False) -> tuple[dict[str, dict[str, Any]], Offer | None]:
    """Before anything starts: every machine of ``parts`` gets the dataflow's files (the same path or
    a copy) and runs its nodes' builds, all machines at once; ``call(machine, verb, **args)`` is the
    coordinator's command to a daemon. Returns each machine's answer and the offer shipped (None
    when every machine is ``beside``); CommandError naming every machine that failed (then nothing
    was started anywhere). ``keep=False``: a build with no start after it (``dora-zenoh build
    FILE``); each answer then holds its build output.

    ``beside``: daemons on the coordinator's own machine. They run from the folder itself, never
    from a copy: its files may change all the time (a running node's output) and it is the same
    folder anyway.

    A file that changed while it was shipped (the offer found it so) makes a new manifest and
    every machine prepares again (those already done fetch nothing), up to ATTEMPTS times: a
    file written once during a start (an editor's save) does not fail it; one written all the
    time (a log) fails it, named, with the ignore file as the fix.

    ``keep_offer``: the offer shipped is kept (its small files' content, its copies aside) for
    ``pinned`` later: a machine that restarts its nodes then gets the files the others started
    with, not what the folder holds by then (a helper's edit while a daemon was down ran on one
    machine only, 4 Dec). Release it with ``server.withdraw(offer)``."""
    if pinned is not None:
        answers, errors, offer = _prepare_once(server, desc, parts, name, build, call, keep, beside, pinned)
        if errors:
            raise CommandError("; ".join(errors[m] for m in sorted(errors)) + (
                f" ({', '.join(sorted(pinned.changed))} changed on the coordinator's machine since the dataflow "
                "started, and the other machines run the start's version: stop and start the dataflow to run "
                "the new one)" if pinned.changed else ""))
        return answers, offer
    changed: set[str] = set()
    for attempt in range(1, ATTEMPTS + 1):
        answers, errors, offer = _prepare_once(server, desc, parts, name, build, call, keep, beside,
                                               keep_offer=keep_offer)
        if not errors:
            return answers, offer
        if offer is None or not offer.changed:
            raise CommandError("; ".join(errors[m] for m in sorted(errors)))
        changed |= offer.changed
        if attempt < ATTEMPTS:
            print(f"[dora-zenoh] dataflow '{name}': {', '.join(sorted(offer.changed))} changed while it was shipped; "
                  f"making a new manifest (attempt {attempt + 1} of {ATTEMPTS})", flush=True)
    files = ", ".join(sorted(changed))
    raise CommandError(f"dataflow '{name}': {files} kept changing while the folder {desc.base_dir} was shipped to "
                       f"its other machines ({ATTEMPTS} attempts). If a running program writes it (a log, a "
                       f"recording), list it in {Path(desc.base_dir) / IGNORE_FILE} (one pattern a line, as in "
                       ".gitignore); then start the dataflow again")


def changed_since(offer: Offer) -> list[str]:
    """The files of ``offer``'s manifest whose content differs in its folder now (or that are gone):
    what a machine restarting from that offer does not run (files added since are not shipped)."""
    try:
        now, _ = scan(offer.root)
    except ShipError:
        return sorted(offer.manifest.files)
    return sorted(rel for rel, (_, sha, _) in offer.manifest.files.items()
                  if now.files.get(rel, (0, None, False))[1] != sha)


def _prepare_once(server: Server, desc: Any, parts: dict[str, list[str]], name: str, build: bool,
                  call: Callable[..., dict[str, Any]], keep: bool = True, beside: frozenset[str] = frozenset(),
                  pinned: Offer | None = None, keep_offer: bool = False
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, str], Offer | None]:
    """One round of :func:`prepare_machines` with a fresh manifest (or ``pinned``): (answers,
    errors, the offer; None when every machine is ``beside``)."""
    offer: Offer | None = pinned
    if pinned is not None:
        pinned.changed.clear()
        server.serve(pinned)
    elif set(parts) - beside:
        try:
            offer = server.offer(Path(desc.base_dir))
        except ShipError as exc:
            raise CommandError(str(exc)) from None
    answers: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}

    def one(machine: str, nodes: list[str]) -> None:
        files = offer.for_daemon() if offer is not None and machine not in beside else None
        try:
            answers[machine] = call(machine, "prepare", timeout=PREPARE_TIMEOUT, path=str(desc.path), name=name,
                                    nodes=nodes, files=files, build=build or None,
                                    placement=placement_of(desc) or None, keep=None if keep else False)
        except DoraZenohError as exc:
            errors[machine] = str(exc)
        except Exception as exc:  # noqa: BLE001 - never a machine neither prepared nor failed
            errors[machine] = f"machine '{machine}': {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=one, args=item, daemon=True, name=f"dz-prepare-{item[0]}")
               for item in parts.items()]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        if offer is not None:  # (a kept one's copies stay: its owner withdraws it at the end)
            server.withdraw(offer, discard=pinned is None and not (keep_offer and not errors))
    return answers, errors, offer
