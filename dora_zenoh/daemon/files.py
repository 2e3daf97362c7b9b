"""A daemon's side of shipping: the dataflow's folder on this machine, at the same path or in a cache.

The coordinator offers the folder's manifest (:mod:`dora_zenoh.supervision.ship`). If
every file of it is at the same path here with the same sha256, the nodes run from there,
as they always did. Otherwise the daemon runs them from a copy in its cache,
``<cache>/trees/<manifest sha256>/`` (content-addressed: the same content is one copy,
however often it starts): a new copy is assembled in a staging folder from files it
already has (any earlier copy holding the same sha256) and from chunks fetched from the
coordinator, each file's sha256 checked, then renamed into place, so a half-written copy
is never used. An existing copy is checked file by file at every start: a file that was
changed (or removed) is said so in the daemon's output and fetched again.

``fetched`` counts the bytes that crossed the network for the last preparation; the
daemon prints it (a second start with unchanged files fetches 0 bytes).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zenoh

from dora_zenoh.errors import ShipError
from dora_zenoh.supervision.ship import Manifest, sha256_file
from dora_zenoh.units import format_size
from dora_zenoh.wire import keys

CHUNK_TIMEOUT = 60.0  # seconds to wait for one chunk
WINDOW = 4  # chunks asked for at once (a round trip per chunk would halve a slow link's throughput)
KEEP_TREES = 4  # copies kept besides those in use


@dataclass
class Prepared:
    """Where a dataflow's files are on this machine, and what it took to get them there."""

    root: Path  # the folder to run from (the same path, or a copy in the cache)
    copy: bool  # True: a copy in the cache
    fresh: bool  # True: the copy was made by this preparation (nothing was ever built in it)
    differs: str | None = None  # the first file that made the same path unusable (None: missing or same)
    fetched_files: int = 0
    fetched_bytes: int = 0
    repaired: list[str] = field(default_factory=list)  # cached files found changed and fetched again


class FileCache:
    """The copies of dataflow folders this daemon runs from, under ``base``."""

    def __init__(self, base: Path, session: zenoh.Session) -> None:
        self.base = base
        self.trees = base / "trees"
        self.session = session
        self.lock = threading.Lock()  # one preparation at a time (they may share copies)

    # -- the whole step ----------------------------------------------------------------------------
    def prepare(self, offer: dict[str, Any], in_use: set[Path]) -> Prepared:
        """The folder to run from for ``offer`` (what the coordinator's ``spawn`` carried)."""
        token, root = str(offer["token"]), Path(offer["root"])
        raw = self._fetch_bytes(token, str(offer["manifest"]), int(offer["manifest_size"]), "the manifest")
        if hashlib.sha256(raw).hexdigest() != offer["manifest"]:
            raise ShipError("the manifest that arrived is not the one the coordinator announced (sha256 differs)")
        manifest = Manifest.from_bytes(raw)
        for rel in manifest.files:  # a copy never writes outside its folder
            parts = rel.split("/")
            if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ShipError(f"the manifest lists {rel!r}, which is not a plain relative path; nothing was written")
        differs = self._differs(root, manifest)
        if differs is None:
            return Prepared(root, copy=False, fresh=False)
        with self.lock:
            tree = self.trees / manifest.digest
            if tree.is_dir():
                prepared = Prepared(tree, copy=True, fresh=False, differs=differs or None)
                self._repair(tree, manifest, token, prepared)
            else:
                prepared = Prepared(tree, copy=True, fresh=True, differs=differs or None)
                self._assemble(tree, manifest, token, prepared)
            self._write_meta(tree, root, manifest)
            self._prune(in_use | {tree})
            self._remove_stale_staging()
        return prepared

    def built(self, tree: Path) -> set[str]:
        """The build commands that succeeded in a copy (a copy is built once, when made)."""
        try:
            return set(json.loads(self._meta(tree).read_text()).get("built", []))
        except (OSError, ValueError):
            return set()

    def mark_built(self, tree: Path, command: str) -> None:
        meta = self._meta(tree)
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            data = {}
        data["built"] = sorted(set(data.get("built", [])) | {command})
        meta.write_text(json.dumps(data))

    # -- the same path ---------------------------------------------------------------------------
    @staticmethod
    def _differs(root: Path, manifest: Manifest) -> str | None:
        """None if every file of the manifest is at ``root`` with the same content; else the first
        file that is not ("" if ``root`` is not a folder here)."""
        if not root.is_dir():
            return ""
        for rel, (size, sha, _) in sorted(manifest.files.items()):
            path = root / rel
            try:
                if path.stat().st_size != size or sha256_file(path) != sha:
                    return rel
            except OSError:
                return rel
        return None

    # -- copies ------------------------------------------------------------------------------------
    def _assemble(self, tree: Path, manifest: Manifest, token: str, prepared: Prepared) -> None:
        self.trees.mkdir(parents=True, exist_ok=True)
        staging = self.trees / f".staging-{manifest.digest[:16]}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            local = self._known_files()
            for rel, (size, sha, executable) in sorted(manifest.files.items()):
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if not self._copy_known(local.get(sha, []), sha, target):
                    self._fetch_file(token, rel, size, sha, target)
                    prepared.fetched_files += 1
                    prepared.fetched_bytes += size
                os.chmod(target, 0o755 if executable else 0o644)
            staging.rename(tree)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _repair(self, tree: Path, manifest: Manifest, token: str, prepared: Prepared) -> None:
        """Check every file of an existing copy; fetch again those that changed."""
        for rel, (size, sha, executable) in sorted(manifest.files.items()):
            path = tree / rel
            try:
                same = path.is_file() and path.stat().st_size == size and sha256_file(path) == sha
            except OSError:
                same = False
            if same:
                continue
            prepared.repaired.append(rel)
            part = path.with_name(f".{path.name}.dz-partial")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._fetch_file(token, rel, size, sha, part)
                os.chmod(part, 0o755 if executable else 0o644)
                part.replace(path)
            finally:
                part.unlink(missing_ok=True)
            prepared.fetched_files += 1
            prepared.fetched_bytes += size

    def _known_files(self) -> dict[str, list[Path]]:
        """sha256 -> files of earlier copies with that content (from their manifests' records)."""
        known: dict[str, list[Path]] = {}
        if not self.trees.is_dir():
            return known
        for meta in self.trees.glob("*.json"):
            try:
                files = json.loads(meta.read_text()).get("files", {})
            except (OSError, ValueError):
                continue
            tree = meta.with_suffix("")
            for rel, sha in files.items():
                known.setdefault(sha, []).append(tree / rel)
        return known

    @staticmethod
    def _copy_known(candidates: list[Path], sha: str, target: Path) -> bool:
        """Copy a file we already have with this content (checked: copies can be changed)."""
        for path in candidates:
            try:
                shutil.copyfile(path, target)
                if sha256_file(target) == sha:
                    return True
            except OSError:
                continue
        return False

    def _meta(self, tree: Path) -> Path:
        return tree.with_name(tree.name + ".json")

    def _write_meta(self, tree: Path, origin: Path, manifest: Manifest) -> None:
        """Record where a copy came from, when it was last used, and each file's sha256 (to reuse
        files in later copies); build commands that succeeded in it are kept."""
        meta = self._meta(tree)
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            data = {}
        data.update({"origin": str(origin), "used": time.time(),
                     "files": {rel: sha for rel, (_, sha, _) in manifest.files.items()}})
        meta.write_text(json.dumps(data))

    def _prune(self, keep: set[Path]) -> None:
        """Remove the least recently used copies beyond KEEP_TREES (never one in use)."""
        metas = []
        for meta in self.trees.glob("*.json"):
            try:
                used = float(json.loads(meta.read_text()).get("used", 0))
            except (OSError, ValueError):
                used = 0.0
            metas.append((used, meta))
        metas.sort(reverse=True)
        for _, meta in metas[KEEP_TREES:]:
            tree = meta.with_suffix("")
            if tree in keep:
                continue
            shutil.rmtree(tree, ignore_errors=True)
            meta.unlink(missing_ok=True)

    def _remove_stale_staging(self) -> None:
        """Staging folders of a daemon that died while assembling a copy (never used: not renamed)."""
        for staging in self.trees.glob(".staging-*"):
            try:
                pid = int(staging.name.split("-")[2])
                os.kill(pid, 0)
                continue  # its daemon lives (another daemon sharing this cache dir)
            except (IndexError, ValueError, ProcessLookupError):
                shutil.rmtree(staging, ignore_errors=True)
            except PermissionError:
                continue

    # -- the network -------------------------------------------------------------------------------
    def _fetch_file(self, token: str, rel: str, size: int, sha: str, target: Path) -> None:
        """Fetch a file into ``target``, checking its size and sha256 (ShipError naming it)."""
        digest = hashlib.sha256()
        got = 0
        with open(target, "wb") as f:
            for data in self._chunks(token, sha, size, rel):
                f.write(data)
                digest.update(data)
                got += len(data)
        if got != size or digest.hexdigest() != sha:
            target.unlink(missing_ok=True)
            raise ShipError(f"{rel}: what arrived ({format_size(got)}) is not what the coordinator listed "
                            f"({format_size(size)}, sha256 {sha[:12]}...): the file changed on the coordinator's "
                            "machine while it was shipped (if a running program writes it, e.g. a log or a "
                            "recording, list it in the folder's .dora-zenoh-ignore); start the dataflow again")

    def _fetch_bytes(self, token: str, sha: str, size: int, what: str) -> bytes:
        return b"".join(self._chunks(token, sha, size, what))

    def _chunks(self, token: str, sha: str, size: int, what: str):  # noqa: ANN202 (a generator of bytes)
        """The chunks of one content, in order, with up to WINDOW queries in flight."""
        from dora_zenoh.supervision.ship import CHUNK

        count = max(1, -(-size // CHUNK))
        pending: deque = deque()
        sent = 0
        for index in range(count):
            while sent < count and len(pending) < WINDOW:
                pending.append(self.session.get(keys.files_key(token, sha, str(sent)), timeout=CHUNK_TIMEOUT))
                sent += 1
            replies = pending.popleft()
            data, error = None, "no answer"
            for reply in replies:
                if reply.ok is not None:
                    data = reply.ok.payload.to_bytes()
                    break
                error = reply.err.payload.to_string() if reply.err is not None else error
            if data is None:
                raise ShipError(f"{what}: chunk {index + 1} of {count} did not arrive from the coordinator "
                                f"({error}; waited up to {CHUNK_TIMEOUT:g} s)")
            yield data
