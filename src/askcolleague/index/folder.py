"""The folder backend: a self-describing index folder of versions, each FAISS vectors + a SQLite
store + BM25 postings, opened as an `Index` and written through a `FolderWriter`.

Layout of an index folder::

    indexes/default/
      CURRENT             name of the live version folder (replaced atomically)
      .lock               held by a running build/update
      v-20261128T235900-3f2a/
        manifest.json     format version, model, chunker, sources with hashes, counts, command
        vectors.faiss     IndexIDMap2(IndexFlatIP): vector id = chunks.id in the store (faiss.py)
        store.sqlite      sources, docs, chunks (+ FTS5), people, chunk_people (sqlite.py)
        bm25/             BM25 postings over FTS5's terms, memory-mapped by readers (bm25.py)

A build writes a new version folder, then swaps CURRENT with ``os.replace``: a crash at any point
leaves the previous version loadable, and readers never see a half-written index.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Iterable

import numpy as np

from ..embed import Embedder, get_embedder, model_setting_for, runtime_for
from ..errors import DiskFullError, IndexFormatError, IndexLockedError, IndexNotFoundError, ModelMismatchError
from ..loaders.base import display
from ..settings import Settings
from . import bm25
from .faiss import FILE, FaissVectors, FlatFileWriter, read_flat
from .sqlite import Store

FORMAT = "askcolleague-index"
FORMAT_VERSION = 1


def _fsync_dir(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def current_version(index_path: Path) -> Path | None:
    """The live version folder of an index, or None when there is none."""
    cur = Path(index_path) / "CURRENT"
    if not cur.is_file():
        return None
    name = cur.read_text().strip()
    vdir = Path(index_path) / name
    return vdir if name and vdir.is_dir() else None


class IndexLock:
    """An exclusive lock on an index folder (fcntl.flock on ``.lock``)."""

    def __init__(self, index_path: Path, wait: bool = False) -> None:
        self.path = Path(index_path) / ".lock"
        self.wait = wait
        self.fd: int | None = None

    def __enter__(self) -> "IndexLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            self.fd = None
            raise IndexLockedError(
                f"{self.path.parent}: another build or update is running (pid {holder}); "
                "wait for it to finish, or pass --wait") from None
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        except OSError:  # e.g. a full disk: the pid is only shown to a second build; the lock holds
            pass
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _publish(index_path: Path, tmp_dir: Path) -> Path:
    """Rename a finished temp version folder into place and point CURRENT at it, atomically."""
    final = tmp_dir.with_name(tmp_dir.name.removesuffix(".tmp"))
    for f in sorted(tmp_dir.rglob("*"), key=lambda q: -len(q.parts)):  # files, then their folders
        (_fsync_dir if f.is_dir() else _fsync_file)(f)
    _fsync_dir(tmp_dir)
    os.rename(tmp_dir, final)
    _fsync_dir(index_path)
    cur_tmp = index_path / "CURRENT.tmp"
    with open(cur_tmp, "w") as f:
        f.write(final.name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(cur_tmp, index_path / "CURRENT")
    _fsync_dir(index_path)
    return final


def _collect_garbage(index_path: Path, keep: Iterable[Path]) -> None:
    """Remove old and half-written version folders (the lock is held), keeping `keep`."""
    keep_names = {p.name for p in keep if p is not None}
    for d in index_path.iterdir():
        if d.is_dir() and d.name.startswith("v-") and d.name not in keep_names:
            shutil.rmtree(d, ignore_errors=True)


def _remove_stale_tmp(index_path: Path) -> None:
    """Remove half-written ``v-*.tmp`` folders and ``CURRENT.tmp`` left by a build that crashed or ran
    out of disk. Only called with the index lock held, so no running build owns them."""
    if not index_path.is_dir():
        return
    for d in index_path.iterdir():
        if d.name.startswith("v-") and d.name.endswith(".tmp") and d.is_dir() and not d.is_symlink():
            shutil.rmtree(d, ignore_errors=True)
    try:
        (index_path / "CURRENT.tmp").unlink(missing_ok=True)
    except OSError:
        pass


def _discard_unpublished(index_path: Path, tmp_dir: Path) -> None:
    """After a failed write: remove the new version folder (renamed or not) unless CURRENT names it."""
    final = tmp_dir.with_name(tmp_dir.name.removesuffix(".tmp"))
    live = current_version(index_path)
    for d in (tmp_dir, final):
        if d.is_dir() and (live is None or d.name != live.name):
            shutil.rmtree(d, ignore_errors=True)
    try:
        (index_path / "CURRENT.tmp").unlink(missing_ok=True)
    except OSError:
        pass


def is_disk_full(e: BaseException) -> bool:
    """Whether an error from writing an index means the disk (or quota) is full: OSError ENOSPC/EDQUOT,
    SQLite's "database or disk is full", or a FAISS write error saying "No space left on device"."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(e, sqlite3.Error):
        return getattr(e, "sqlite_errorcode", None) == 13 or "full" in str(e).lower()  # SQLITE_FULL
    if isinstance(e, RuntimeError):
        return os.strerror(errno.ENOSPC).lower() in str(e).lower() or os.strerror(errno.EDQUOT).lower() in str(e).lower()
    return False


def _mount_point(path: Path) -> Path:
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _folder_bytes(path: Path | None) -> int:
    if path is None or not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def disk_full_error(index_path: Path, need: int, old_vdir: Path | None) -> DiskFullError:
    """The one-line message for a build that ran out of disk space."""
    mount = _mount_point(index_path)
    try:
        free = f", {shutil.disk_usage(mount).free / 1e6:.0f} MB free"
    except OSError:
        free = ""
    kept = "the previous version is unchanged" if old_vdir is not None else "nothing was written"
    return DiskFullError(
        f"{display(index_path)}: disk full while writing the new index version (needs about "
        f"{max(need, 1_000_000) / 1e6:.0f} MB{free} on {display(mount)}); {kept} and the partial version "
        f"was removed; free space on {display(mount)} and run again")


def read_manifest(vdir: Path) -> dict:
    try:
        m = json.loads((vdir / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{vdir}: unreadable manifest.json ({e}); run `askcolleague index build --rebuild`") from None
    if m.get("format") != FORMAT:
        raise IndexFormatError(f"{vdir}: not an askcolleague index; pick another --index folder")
    if m.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"{vdir}: index format {m.get('format_version')} is not supported by this version "
            f"(expects {FORMAT_VERSION}); run `askcolleague index build --rebuild`")
    return m


def live_version(path: Path) -> tuple[Path, dict]:
    """The live version folder and its manifest; IndexNotFoundError says how to build one."""
    vdir = current_version(path)
    if vdir is None:
        raise IndexNotFoundError(
            f"{path}: no index here; build one with `askcolleague index build SOURCES --index {path}`")
    return vdir, read_manifest(vdir)


class IndexModel:
    """The model that embedded a loaded index version (its manifest's `model`), for every backend."""

    manifest: dict
    _embedder: Embedder | None

    @property
    def embedder(self) -> Embedder:
        """The index's own embedding model, loaded once per process."""
        if self._embedder is None:
            mid = self.manifest["model"]["id"]
            runtime = runtime_for(mid)
            # (the ONNX runtimes embed a lone question on one thread, an answer's sentences on all)
            self._embedder = get_embedder(model_setting_for(mid), runtime=runtime)
            check_model(self.manifest, self._embedder, getattr(self, "shown", self.path))
        return self._embedder


def check_open_model(manifest: dict, embedder: Embedder | None, settings: Settings, shown) -> None:
    """Opening an index: a given embedder, or the configured model, must be the one that built it."""
    if embedder is not None:
        check_model(manifest, embedder, shown)
    elif settings.model and Path(settings.model).expanduser().resolve().as_posix() != manifest["model"]["id"]:
        raise ModelMismatchError(
            f"{shown}: built with model {manifest['model']['id']}, but ASKCOLLEAGUE_MODEL is {settings.model}; "
            f"run `askcolleague index build --rebuild --index {shown}` or unset ASKCOLLEAGUE_MODEL")


class Index(IndexModel):
    """A loaded index version of the folder backend: its manifest, the chunk store (`store`), the
    vector index (`vectors`), the lexical index (`bm25`), and the model that embedded it. It
    implements the protocols of index/base.py; `faiss` is the backend's own FAISS handle."""

    def __init__(self, path: Path, vdir: Path, manifest: dict, vectors: FaissVectors, store: Store) -> None:
        self.path = path
        self.vdir = vdir
        self.manifest = manifest
        self.vectors = vectors
        self.store = store
        self._embedder: Embedder | None = None
        self._bm25: bm25.Bm25Index | None | bool = False
        self._visible: dict[tuple[str, ...], np.ndarray] = {}

    @property
    def faiss(self):
        return self.vectors.fi

    @property
    def version(self) -> str:
        """The name of this version (its folder)."""
        return self.vdir.name

    def visibility(self, groups: list[str] | None) -> np.ndarray | None:
        """What an asker in `groups` may see, in the form the lexical index takes (`visible=`): a
        boolean mask over chunk ids, cached per set of groups (a version never changes); None: no
        access control."""
        if groups is None:
            return None
        key = tuple(sorted(set(groups)))
        mask = self._visible.get(key)
        if mask is None:
            n = len(self.vectors)
            ids = self.store.visible(list(key))
            mask = np.zeros(n, dtype=bool)
            mask[ids[(ids >= 0) & (ids < n)]] = True
            if len(self._visible) >= 64:
                self._visible.clear()
            self._visible[key] = mask
        return mask

    @classmethod
    def open(cls, index_path: str | Path, settings: Settings | None = None,
             embedder: Embedder | None = None) -> "Index":
        """Open the live version. Raises IndexNotFoundError, IndexFormatError, ModelMismatchError.

        The index's own manifest says which model embedded it; if `embedder` is given, or a model
        is configured, it must be that model.
        """
        settings = settings or Settings.load()
        path = Path(index_path)
        vdir, m = live_version(path)
        check_open_model(m, embedder, settings, path)
        try:
            vectors = FaissVectors.read(vdir)
        except Exception as e:  # faiss raises RuntimeError with a C++ message
            raise IndexFormatError(f"{vdir}/vectors.faiss: unreadable ({str(e).splitlines()[0]}); "
                                   "run `askcolleague index build --rebuild`") from None
        if vectors.dim != m["model"]["dim"]:
            raise ModelMismatchError(f"{path}: vectors have {vectors.dim} dimensions but the manifest says "
                                     f"{m['model']['dim']}; run `askcolleague index build --rebuild`")
        idx = cls(path, vdir, m, vectors, Store(vdir / "store.sqlite", readonly=True))
        idx._embedder = embedder
        return idx

    @property
    def bm25(self) -> "bm25.Bm25Index | None":
        """The in-memory BM25 postings (memory-mapped), or None for an index built without them."""
        if self._bm25 is False:
            try:
                self._bm25 = bm25.Bm25Index.open(self.vdir)
            except (OSError, ValueError) as e:
                raise IndexFormatError(f"{self.vdir}/{bm25.FOLDER}: unreadable ({e}); "
                                       "run `askcolleague index build --rebuild`") from None
        return self._bm25

    def close(self) -> None:
        self.store.close()


def check_model(manifest: dict, embedder: Embedder, path: Path) -> None:
    m = manifest["model"]
    if m["id"] != embedder.model_id or m["dim"] != embedder.dim:
        raise ModelMismatchError(
            f"{path}: built with model {m['id']} ({m['dim']} dims), not {embedder.model_id} "
            f"({embedder.dim} dims); run `askcolleague index build --rebuild --index {path}`")


def status(index_path: str | Path) -> dict:
    """The manifest of the live version plus its folder and size (no model loaded)."""
    path = Path(index_path)
    vdir, m = live_version(path)
    m = dict(m)
    m["index"] = display(path)
    m["version"] = vdir.name
    m["bytes"] = sum(f.stat().st_size for f in vdir.iterdir() if f.is_file())
    return m


class FolderWriter:
    """Writes one new version of a folder index (the `IndexWriter` of index/base.py): `add` the
    build's rows and vectors, `publish(manifest)` to make it live atomically, or `abort`. A failed
    write removes its partial folder and leaves the live version untouched; a full disk says so
    (DiskFullError naming the space needed). Ids: chunk i of `add` is chunks.id = FAISS id = BM25 id i.
    """

    def __init__(self, index_path: Path, need_bytes: int, old_vdir: Path | None) -> None:
        self.index_path, self.need, self.old_vdir = index_path, need_bytes, old_vdir
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        self.tmp = index_path / f"v-{stamp}-{uuid.uuid4().hex[:6]}.tmp"
        self.lexical: dict = {}
        self._store: Store | None = None
        self._flat: FlatFileWriter | None = None
        self.n = 0

    def add(self, sources: list[tuple], docs: list[dict], chunks: list, keys: list[str], people: list,
            links: list[tuple[int, str, str, float]], vecs: np.ndarray, dim: int) -> None:
        """Write the store (sources, documents, chunks with their embed keys, people, links), the BM25
        postings and the vectors of the new version (not yet live) in one call."""
        self.begin(dim)
        self.add_sources(sources)
        self.add_docs(docs)
        self.add_chunks(0, chunks, keys, vecs)
        self.add_people(people)
        self.add_links(links)
        self.finish()

    # the streaming build's calls: begin, then any number of add_*, then finish (chunk ids in order)
    def begin(self, dim: int) -> None:
        try:
            self.index_path.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir()
            self._store = Store.create(self.tmp / "store.sqlite")
            self._flat = FlatFileWriter(self.tmp, dim)
            self.n = 0
        except BaseException as e:
            self.abort(e)

    def add_sources(self, rows: list[tuple]) -> None:
        self._do(lambda: [self._store.add_source(*r) for r in rows])

    def add_docs(self, rows: list[dict]) -> None:
        self._do(lambda: [self._store.add_doc(d) for d in rows])

    def add_chunks(self, first: int, chunks: list, keys: list[str], vecs: np.ndarray) -> None:
        """Chunks `first`, `first + 1`, … with their embed keys and vectors (ids follow on from the last call)."""
        def run():
            if first != self.n or len(vecs) != len(chunks):
                raise ValueError(f"chunks from id {first} ({len(chunks)} with {len(vecs)} vectors); expected id {self.n}")
            self._store.add_chunks((first + j, c, keys[j]) for j, c in enumerate(chunks))
            self._flat.add(np.asarray(vecs, dtype=np.float32).reshape(len(chunks), self._flat.dim))
            self.n += len(chunks)
        self._do(run)

    def add_people(self, people: list) -> None:
        self._do(lambda: self._store.add_people(people))

    def add_links(self, links: list[tuple[int, str, str, float]]) -> None:
        self._do(lambda: self._store.add_links(links))

    def finish(self) -> None:
        """The full-text index, the BM25 postings and the vectors file completed."""
        def run():
            store = self._store
            store.finish()
            self.lexical = bm25.build(store.db, self.n, self.tmp / bm25.FOLDER)
            store.close()
            self._store = None
            self._flat.close()
            self._flat = None
        self._do(run)

    def interrupt(self) -> None:
        """Stop the SQL statement under way (from another thread: the build's, on Ctrl-C or an error)."""
        store = self._store
        if store is not None:
            try:
                store.db.interrupt()
            except Exception:  # noqa: BLE001 (closed meanwhile)
                pass

    def _do(self, fn) -> None:
        try:
            fn()
        except BaseException as e:
            self.abort(e)

    def describe(self) -> dict:
        """The manifest's keys that say how this version is stored."""
        return {"vectors": {"file": FILE, "faiss": "IndexIDMap2(IndexFlatIP)", "metric": "inner product",
                            "normalized": True, "ids": "chunks.id in store.sqlite"},
                "store": {"file": "store.sqlite", "engine": "sqlite3", "fts": "fts5 porter unicode61"},
                "lexical": {"folder": bm25.FOLDER, "scoring": "FTS5 bm25()", **self.lexical}}

    def publish(self, manifest: dict) -> Path:
        """Write the manifest and make this version the live one; old versions are collected."""
        try:
            (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
            final = _publish(self.index_path, self.tmp)
        except BaseException as e:
            self.abort(e)
        _collect_garbage(self.index_path, keep=[final, self.old_vdir])
        return final

    def abort(self, e: BaseException | None = None) -> None:
        """Remove the partial version; re-raise `e` (a full disk as DiskFullError)."""
        if self._flat is not None:
            self._flat.abort()
            self._flat = None
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                pass
            self._store = None
        _discard_unpublished(self.index_path, self.tmp)
        if e is None:
            return
        if is_disk_full(e):
            raise disk_full_error(self.index_path, self.need, self.old_vdir) from None
        raise e


class FolderPrevious:
    """The live version a build reuses from: its manifest, store, sources and vectors by embed key."""

    def __init__(self, vdir: Path, manifest: dict) -> None:
        self.vdir, self.name, self.manifest = vdir, vdir.name, manifest
        self.store = Store(vdir / "store.sqlite", readonly=True)
        self.sources = {s["key"]: s for s in self.store.sources()}
        self._by_key: dict[str, int] | None = None
        self._vecs = None

    @property
    def bytes(self) -> int:
        return _folder_bytes(self.vdir)

    def vectors_by_key(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored vector of each chunk whose embed key is among `keys` (exact text embedded before).
        The vectors file is memory-mapped and the key map read once: a streaming build asks per window."""
        if self._by_key is None:
            flat = read_flat(self.vdir)
            ids, vecs = flat if flat is not None else FaissVectors.read(self.vdir).all()
            n = len(ids)
            in_order = n == 0 or (int(ids[0]) == 0 and int(ids[-1]) == n - 1 and bool((np.diff(ids) == 1).all()))
            pos = None if in_order else {int(i): k for k, i in enumerate(ids)}
            self._vecs = vecs
            self._by_key = {}
            for i, h in self.store.iter_embed_hashes():
                k = i if pos is None else pos.get(i)
                if k is not None and 0 <= k < n:
                    self._by_key.setdefault(h, k)
        return {h: np.array(self._vecs[k], dtype=np.float32) for h in keys
                if (k := self._by_key.get(h)) is not None}

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


class FolderBackend:
    """The folder backend's entry points for the commands (the `Backend` of index/base.py): an index
    location is a folder path."""

    name = "folder"

    @staticmethod
    def location(loc: str | Path) -> Path:
        return Path(loc)

    @staticmethod
    def display(loc: str | Path) -> str:
        return display(Path(loc))

    @staticmethod
    def open(loc: str | Path, settings: Settings | None = None, embedder: Embedder | None = None) -> Index:
        return Index.open(loc, settings, embedder=embedder)

    @staticmethod
    def live_name(loc: str | Path) -> str | None:
        vdir = current_version(Path(loc))
        return vdir.name if vdir else None

    @staticmethod
    def status(loc: str | Path) -> dict:
        return status(loc)

    @staticmethod
    def lock(loc: str | Path, wait: bool = False) -> IndexLock:
        return IndexLock(Path(loc), wait=wait)

    @staticmethod
    def previous(loc: str | Path) -> FolderPrevious | None:
        """The live version to build from (call with the lock held: half-written versions are removed)."""
        path = Path(loc)
        _remove_stale_tmp(path)  # left by a crashed or disk-full build; the lock says none is running
        vdir = current_version(path)
        return FolderPrevious(vdir, read_manifest(vdir)) if vdir else None

    @staticmethod
    def resume_dir(loc: str | Path) -> Path:
        """Where a build keeps the vectors it embedded until it is published (indexing/resume.py)."""
        return Path(loc) / ".resume"

    @staticmethod
    def writer(loc: str | Path, previous: FolderPrevious | None, need_bytes: int) -> FolderWriter:
        prev_bytes = previous.bytes if previous is not None else 0
        return FolderWriter(Path(loc), max(prev_bytes, need_bytes), previous.vdir if previous else None)

    @staticmethod
    def read_forgotten(loc: str | Path) -> list[dict]:
        """People removed with `forget` (``forgotten.json`` in the index folder)."""
        f = Path(loc) / FORGOTTEN
        if not f.is_file():
            return []
        try:
            return json.loads(f.read_text())
        except ValueError as e:
            raise IndexFormatError(f"{f}: unreadable ({e}); fix or delete it (people in it would come back)") from None

    @staticmethod
    def write_forgotten(loc: str | Path, entries: list[dict]) -> None:
        path = Path(loc)
        tmp = path / (FORGOTTEN + ".tmp")
        tmp.write_text(json.dumps(entries, indent=2, ensure_ascii=False))
        os.replace(tmp, path / FORGOTTEN)

    @staticmethod
    def feedback(loc: str | Path):
        from ..feedback import FeedbackStore

        return FeedbackStore.for_index(Path(loc))

    @staticmethod
    def has_feedback(loc: str | Path) -> bool:
        from ..feedback import FILENAME

        return (Path(loc) / FILENAME).is_file()


FORGOTTEN = "forgotten.json"
