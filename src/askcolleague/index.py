"""Build, update and open a self-describing index folder: manifest, FAISS vectors, SQLite store.

Layout of an index folder::

    indexes/default/
      CURRENT             name of the live version folder (replaced atomically)
      .lock               held by a running build/update
      v-20261128T235900-3f2a/
        manifest.json     format version, model, chunker, sources with hashes, counts, command
        vectors.faiss     IndexIDMap2(IndexFlatIP): vector id = chunks.id in the store
        store.sqlite      sources, docs, chunks (+ FTS5), people, chunk_people
        bm25/             BM25 postings over FTS5's terms, memory-mapped by readers (lexical.py)

A build writes a new version folder, then swaps CURRENT with ``os.replace``: a crash at any point
leaves the previous version loadable, and readers never see a half-written index.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import __version__, calibration, lexical
from .chunker import ChunkerConfig, chunk_doc, embed_key
from .embedder import Embedder, get_embedder, model_setting_for, runtime_for
from .errors import (
    ConfigError, DiskFullError, IndexFormatError, IndexLockedError, IndexNotFoundError, LoadError,
    MetadataError, ModelMismatchError, NothingIndexedError,
)
from .loaders import SourceSpec, discover, encodings_of, load_source, source_key, valid_text
from .loaders.base import display, file_hash
from .loaders.meta import SIDECAR_SUFFIXES
from .models import AuthorRef, Block, Chunk, Doc, Person, SourceError
from .settings import Settings
from .store import Store, chunk_from_row

FORMAT = "askcolleague-index"
FORMAT_VERSION = 1


# ------------------------------------------------------------------------------------------
# reports

@dataclass
class BuildReport:
    """What a build or update did."""

    index: str
    version: str
    sources_indexed: int = 0
    sources_reused: int = 0  # unchanged since the previous version: not re-read
    skipped: list[SourceError] = field(default_factory=list)
    kept: list[SourceError] = field(default_factory=list)  # failed now, previous version kept
    docs: int = 0
    chunks: int = 0
    people: int = 0
    embedded: int = 0  # chunks sent to the model
    reused_vectors: int = 0
    seconds: float = 0.0
    changed: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"] = [asdict(s) for s in self.skipped]
        d["kept"] = [asdict(s) for s in self.kept]
        return d

    def summary(self) -> str:
        parts = [f"{self.sources_indexed} indexed", f"{len(self.skipped)} skipped"]
        if self.kept:
            parts.append(f"{len(self.kept)} kept from the previous version")
        return (", ".join(parts) + f" — {self.docs} docs, {self.chunks} chunks, {self.people} people; "
                f"embedded {self.embedded}, reused {self.reused_vectors} ({self.seconds:.1f}s)")


# ------------------------------------------------------------------------------------------
# folder, lock, versions

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


# ------------------------------------------------------------------------------------------
# opening an index

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


class Index:
    """A loaded index version: manifest, FAISS vectors, store, and the model that embedded it."""

    def __init__(self, path: Path, vdir: Path, manifest: dict, faiss_index, store: Store) -> None:
        self.path = path
        self.vdir = vdir
        self.manifest = manifest
        self.faiss = faiss_index
        self.store = store
        self._embedder: Embedder | None = None
        self._bm25: lexical.Bm25Index | None | bool = False

    @classmethod
    def open(cls, index_path: str | Path, settings: Settings | None = None,
             embedder: Embedder | None = None) -> "Index":
        """Open the live version. Raises IndexNotFoundError, IndexFormatError, ModelMismatchError.

        The index's own manifest says which model embedded it; if `embedder` is given, or a model
        is configured, it must be that model.
        """
        import faiss

        settings = settings or Settings.load()
        path = Path(index_path)
        vdir, m = live_version(path)
        if embedder is not None:
            check_model(m, embedder, path)
        elif settings.model and Path(settings.model).expanduser().resolve().as_posix() != m["model"]["id"]:
            raise ModelMismatchError(
                f"{path}: built with model {m['model']['id']}, but ASKCOLLEAGUE_MODEL is {settings.model}; "
                f"run `askcolleague index build --rebuild --index {path}` or unset ASKCOLLEAGUE_MODEL")
        try:
            fi = faiss.read_index(str(vdir / "vectors.faiss"))
        except Exception as e:  # faiss raises RuntimeError with a C++ message
            raise IndexFormatError(f"{vdir}/vectors.faiss: unreadable ({str(e).splitlines()[0]}); "
                                   "run `askcolleague index build --rebuild`") from None
        if fi.d != m["model"]["dim"]:
            raise ModelMismatchError(f"{path}: vectors have {fi.d} dimensions but the manifest says "
                                     f"{m['model']['dim']}; run `askcolleague index build --rebuild`")
        idx = cls(path, vdir, m, fi, Store(vdir / "store.sqlite", readonly=True))
        idx._embedder = embedder
        return idx

    @property
    def embedder(self) -> Embedder:
        """The index's own embedding model, loaded once per process."""
        if self._embedder is None:
            mid = self.manifest["model"]["id"]
            runtime = runtime_for(mid)
            # (the ONNX runtimes embed a lone question on one thread, an answer's sentences on all)
            self._embedder = get_embedder(model_setting_for(mid), runtime=runtime)
            check_model(self.manifest, self._embedder, self.path)
        return self._embedder

    @property
    def bm25(self) -> "lexical.Bm25Index | None":
        """The in-memory BM25 postings (memory-mapped), or None for an index built without them."""
        if self._bm25 is False:
            try:
                self._bm25 = lexical.Bm25Index.open(self.vdir)
            except (OSError, ValueError) as e:
                raise IndexFormatError(f"{self.vdir}/{lexical.FOLDER}: unreadable ({e}); "
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


def vectors_of(fi) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) stored in an IndexIDMap2(IndexFlat)."""
    import faiss

    ids = faiss.vector_to_array(fi.id_map).astype(np.int64)
    inner = faiss.downcast_index(fi.index)
    xb = faiss.rev_swig_ptr(inner.get_xb(), fi.ntotal * fi.d).reshape(fi.ntotal, fi.d)
    return ids, np.array(xb, dtype=np.float32)


# ------------------------------------------------------------------------------------------
# building

def read_sources_yaml(path: Path) -> tuple[list[Path], list[Path]]:
    """Sources and people files listed in a sources.yaml (paths relative to its folder)."""
    import yaml

    from . import safeyaml

    try:
        data = safeyaml.load(path.read_text(encoding="utf-8"), str(path)) or {}
    except safeyaml.YamlRefused as e:
        raise ConfigError(str(e)) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read ({str(e).splitlines()[0]}); fix the YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with `sources:` and `people:` lists")
    base = path.parent
    srcs = [base / str(s) for s in data.get("sources") or []]
    ppl = [base / str(s) for s in data.get("people") or []]
    return srcs, ppl


def _path_entry(path: Path) -> dict:
    """A path for the manifest: valid UTF-8 text, and its bytes (hex) when the name is not UTF-8."""
    shown = display(path)
    return {"path": shown} if shown == str(path) else {"path": shown, "path_bytes": os.fsencode(path).hex()}


def _entry_path(entry: dict) -> Path:
    return Path(os.fsdecode(bytes.fromhex(entry["path_bytes"]))) if entry.get("path_bytes") else Path(entry["path"])


def source_hash(spec: SourceSpec) -> tuple[str, int]:
    """Content hash and size of a source: a file (plus its sidecar) or a whole folder."""
    h = hashlib.sha256()
    size = 0
    p = spec.path
    # (a folder export's own links are never read by its loader, so they are not hashed either)
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.is_symlink()) if p.is_dir() else [p]
    sides = [p.with_name(p.name + ext) for ext in SIDECAR_SUFFIXES]
    for side in sides:
        if side.is_file():
            files.append(side)
    for f in files:
        st = f.stat()
        size += st.st_size
        h.update(os.fsencode(f.relative_to(p).as_posix() if p.is_dir() and f not in sides else f.name))
        h.update(file_hash(f).encode())
    return h.hexdigest(), size


def _profile_docs(people: list[Person], key_of: Callable[[str], str]) -> list[Doc]:
    from .people import profile_text

    docs = []
    for p in people:
        if not p.has_profile:
            continue
        ident = p.email or p.person_id or p.name
        docs.append(Doc(
            doc_id=f"profile:{ident}", source=key_of(p.source or "people"), title=f"{p.name} — profile",
            source_type="profile", url=p.url, groups=list(p.groups), authors=[AuthorRef(p.name, p.email)],
            blocks=[Block(text=profile_text(p), kind="profile", authors=[AuthorRef(p.name, p.email)],
                          unit_id="profile", url=p.url)]))
    return docs


class _Progress:
    """tqdm bars on stderr when enabled; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, iterable=None, total=None, desc="", unit="it"):
        if not self.enabled:
            return _Null(iterable)
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                    dynamic_ncols=True, mininterval=0.5)


class _Null:
    def __init__(self, it):
        self.it = it

    def __iter__(self):
        return iter(self.it)

    def update(self, n=1):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass


def build(
    sources: list[str | Path] | None = None,
    index_path: str | Path | None = None,
    people_files: list[str | Path] | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    update: bool = False,
    wait: bool = False,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
    command: list[str] | None = None,
) -> BuildReport:
    """Build (or with ``update=True`` refresh) an index; return a BuildReport.

    Unchanged sources are carried over from the previous version without re-reading, and every
    chunk whose exact text was embedded before reuses its vector, so only new or changed
    files/threads reach the model. With ``rebuild=True`` nothing is reused (use it to change model).
    A file that fails is skipped with a warning; if an earlier version had it, that version is kept.
    """
    import faiss

    t0 = time.time()
    settings = settings or Settings.load()
    index_path = Path(index_path or settings.index)
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    bar = _Progress(progress)

    with IndexLock(index_path, wait=wait):
        _remove_stale_tmp(index_path)  # left by a crashed or disk-full build; the lock says none is running
        old_vdir = current_version(index_path)
        old_manifest = read_manifest(old_vdir) if old_vdir else None

        # which sources
        if update:
            if old_manifest is None:
                raise IndexNotFoundError(f"{index_path}: no index to update; run `askcolleague index build SOURCES --index {index_path}` first")
            roots = [_entry_path(r) for r in old_manifest["roots"]]
            ppl_files = [_entry_path(r) for r in old_manifest["people_files"]]
            if sources:
                roots += [Path(s) for s in sources]
            ppl_files += [Path(p) for p in people_files or []]
        else:
            roots = [Path(s) for s in sources or []]
            ppl_files = [Path(p) for p in people_files or []]
            if not roots and not ppl_files:
                sy = Path("ingest/sources.yaml")
                if not sy.is_file():
                    raise ConfigError("no sources given and no ingest/sources.yaml; name the folders/files to index")
                roots, ppl_files = read_sources_yaml(sy)

        if embedder is None:
            model, runtime = settings.model, settings.runtime
            if update and old_manifest and not model:
                model = model_setting_for(old_manifest["model"]["id"])
                runtime = runtime_for(old_manifest["model"]["id"], runtime)
            embedder = get_embedder(model or None, batch_size=settings.batch_size, threads=settings.threads,
                                    runtime=runtime)

        # reuse is only possible from an index made by the same model
        old_store = old_fi = None
        if old_manifest is not None and not rebuild:
            check_model(old_manifest, embedder, index_path)
            old_store = Store(old_vdir / "store.sqlite", readonly=True)
            old_fi = faiss.read_index(str(old_vdir / "vectors.faiss"))
        old_sources = {s["key"]: s for s in old_store.sources()} if old_store else {}

        specs, found_people, problems = discover(roots, follow_symlinks=bool(settings.follow_symlinks))
        report = BuildReport(index=display(index_path), version="")
        for path, reason in problems:
            report.skipped.append(SourceError(path, reason))
            warn(f"{path}: {reason}")
        all_people_files = list({Path(p).resolve(): Path(p) for p in [*ppl_files, *found_people]}.values())

        # people profiles
        from .people import IdentityResolver, load_people

        profiles: list[Person] = []
        max_bytes = int(settings.max_file_mb * 1024 * 1024)
        people_keys: dict[str, str] = {}
        for pf in all_people_files:
            key = display(source_key(pf, pf))
            people_keys[str(pf)] = key
            try:
                if not pf.is_file():
                    raise LoadError("no such people file; check the path")
                profiles.extend(valid_text(p) for p in load_people(pf, max_bytes=max_bytes))
            except LoadError as e:
                report.skipped.append(SourceError(display(pf), str(e)))
                warn(f"{display(pf)}: {e}")
        resolver = IdentityResolver(profiles)

        # load (or carry over) each source
        chunker_cfg = ChunkerConfig(settings.chunk_tokens, settings.chunk_overlap)
        same_chunker = bool(old_manifest) and old_manifest.get("chunker") == chunker_cfg.to_dict()
        docs_rows: list[dict] = []
        chunks: list[Chunk] = []
        src_rows: list[tuple] = []
        from .loaders.pool import ParsePool  # sources parsed ahead in worker processes, with a timeout
        pool = ParsePool(specs, max_bytes, settings, wanted=lambda s: not (same_chunker and s.key in old_sources),
                         load=load_source)
        for spec in bar(specs, desc="Reading sources", unit="file"):
            try:
                h, size = source_hash(spec)
            except OSError as e:
                report.skipped.append(SourceError(display(spec.path), f"cannot read ({e.strerror})"))
                warn(f"{display(spec.path)}: cannot read ({e.strerror})")
                continue
            old = old_sources.get(spec.key)
            if old and old["hash"] == h and old["status"] == "ok" and same_chunker:
                src_chunks = [chunk_from_row(r) for r in old_store.chunks_of_source(spec.key)]
                src_docs = old_store.docs_of_source(spec.key)
                report.sources_reused += 1
            else:
                try:
                    docs = pool.load(spec)
                except LoadError as e:
                    err = SourceError(display(spec.path), str(e))
                    if old and old_store is not None and isinstance(e, MetadataError):
                        # its access groups may have changed: the old version is not kept either
                        err.reason += " (the previously indexed version is removed: its groups may have changed)"
                        report.skipped.append(err)
                        warn(f"{display(spec.path)}: {err.reason}")
                        continue
                    if old and old_store is not None:
                        report.kept.append(err)
                        warn(f"{display(spec.path)}: {e} (keeping the previously indexed version)")
                        src_chunks = [chunk_from_row(r) for r in old_store.chunks_of_source(spec.key)]
                        src_docs = old_store.docs_of_source(spec.key)
                        h, size = old["hash"], old["size"]
                    else:
                        report.skipped.append(err)
                        warn(f"{display(spec.path)}: {e}")
                        continue
                else:
                    src_chunks = [c for d in docs for c in chunk_doc(d, embedder, chunker_cfg)]
                    src_docs = [_doc_row(d) for d in docs]
                    try:
                        changed = source_hash(spec)[0] != h
                    except OSError:
                        changed = True
                    if changed:  # keep the hash from before the read: the next update reads it again
                        warn(f"{display(spec.path)}: changed while being read; indexed what was read, "
                             "run `askcolleague index update` again to pick up the new version")
            report.sources_indexed += 1
            docs_rows.extend(src_docs)
            chunks.extend(src_chunks)
            src_rows.append((spec.key, display(spec.path.absolute()), spec.kind, h, size, len(src_docs), len(src_chunks)))

        pool.close()
        if not chunks and (specs or not profiles):
            raise NothingIndexedError(
                f"nothing could be indexed ({len(report.skipped)} skipped); fix the files named above"
                + (f" — the previous index at {index_path} is unchanged" if old_vdir else ""))

        # people removed with `askcolleague forget` stay removed, whatever the sources say
        forgotten = read_forgotten(index_path)

        # profiles become chunks too
        for d in _profile_docs([p for p in resolver.people() if p.has_profile and not _forgotten(p, forgotten)],
                               lambda s: people_keys.get(s, s)):
            docs_rows.append(_doc_row(d))
            chunks.extend(chunk_doc(d, embedder, chunker_cfg))

        # identity resolution: every author → one person
        resolved = [[resolver.resolve(a) for a in c.authors] for c in chunks]
        if forgotten:
            kept = [(c, ps) for c, ps in zip(chunks, resolved)
                    if not (ps and all(_forgotten(p, forgotten, content=True) for p in ps))]
            chunks = [c for c, _ in kept]
            resolved = [[p for p in ps if not _forgotten(p, forgotten)] for _, ps in kept]
            live_docs = {c.doc_id for c in chunks}
            docs_rows = [d for d in docs_rows if d["doc_id"] in live_docs]
        links: list[tuple[int, str, str, float]] = []
        for rid, (c, ps) in enumerate(zip(chunks, resolved)):
            role = "profile" if c.source_type == "profile" else "author"
            for p in ps:
                links.append((rid, p.person_id, role, 1.0 / max(len(c.authors), 1)))
        people_ids = {pid for _, pid, _, _ in links}
        # members of private channels (Slack) get the channel's own group for access control — only
        # that one: a group a sidecar gave the export is not theirs to have
        member_groups: dict[str, set[str]] = {}
        for d in docs_rows:
            meta = d.get("meta") or {}
            own = {g for g in d["groups"] if g == f"slack:{meta.get('channel')}"}
            for member in meta.get("members", []) if own else []:
                ref = AuthorRef(**member) if isinstance(member, dict) else AuthorRef(handle=str(member))
                p = resolver.resolve(ref)
                member_groups.setdefault(p.person_id, set()).update(own)
        people = [p for p in resolver.people()
                  if (p.has_profile or p.person_id in people_ids) and not _forgotten(p, forgotten)]
        for p in people:
            p.groups = sorted(set(p.groups) | member_groups.get(p.person_id, set()))

        # embeddings: reuse by exact embed text, embed the rest (length-sorted batches)
        keys = [embed_key(c) for c in chunks]
        vecs = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
        have = np.zeros(len(chunks), dtype=bool)
        if old_store is not None:
            old_ids, old_vecs = vectors_of(old_fi)
            pos = {int(i): k for k, i in enumerate(old_ids)}
            by_hash = {h: pos[i] for i, h in old_store.iter_embed_hashes() if i in pos}
            for k, h in enumerate(keys):
                j = by_hash.get(h)
                if j is not None:
                    vecs[k] = old_vecs[j]
                    have[k] = True
        todo = [k for k in range(len(chunks)) if not have[k]]
        todo.sort(key=lambda k: chunks[k].n_tokens)
        report.reused_vectors = int(have.sum())
        report.embedded = len(todo)
        bs = max(settings.batch_size, 1)
        with bar(total=len(todo), desc="Embedding", unit="chunk") as pb:
            for i in range(0, len(todo), bs):
                part = todo[i:i + bs]
                vecs[part] = embedder.embed_batch([chunks[k].embed_text for k in part])
                pb.update(len(part))

        old_ids_set = None
        if old_store is not None:
            old_ids_set = {(r["key"], r["hash"]) for r in old_sources.values()}
        report.changed = rebuild or old_manifest is None or report.embedded > 0 or \
            old_ids_set != {(r[0], r[3]) for r in src_rows} or \
            (old_manifest or {}).get("people_files_hash") != _people_hash(all_people_files) or \
            (old_manifest or {}).get("forgotten") != len(forgotten)

        if update and not report.changed:
            old_store.close()
            report.version = old_vdir.name
            report.docs, report.chunks, report.people = len(docs_rows), len(chunks), len(people)
            report.seconds = time.time() - t0
            return report

        # write the new version; on any failure the partial folder is removed, and a full disk says so
        need = max(_folder_bytes(old_vdir), len(chunks) * (embedder.dim * 4 + 512)
                   + 3 * sum(len(c.text) + len(c.embed_text) for c in chunks))
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        tmp = index_path / f"v-{stamp}-{uuid.uuid4().hex[:6]}.tmp"
        store = None
        try:
            index_path.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            store = Store.create(tmp / "store.sqlite")
            for r in src_rows:
                store.add_source(*r)
            for d in docs_rows:
                store.add_doc(d)
            store.add_chunks((rid, c, keys[rid]) for rid, c in enumerate(chunks))
            store.add_people(people)
            store.add_links(links)
            store.finish()
            lex = lexical.build(store.db, len(chunks), tmp / lexical.FOLDER)
            n_profiles = sum(1 for p in people if p.has_profile)
            store.close()
            store = None

            fi = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dim))
            if len(chunks):
                fi.add_with_ids(vecs, np.arange(len(chunks), dtype=np.int64))
            faiss.write_index(fi, str(tmp / "vectors.faiss"))

            report.docs = len(docs_rows)
            report.chunks = len(chunks)
            report.people = len(people)
            encs = encodings_of(docs_rows)  # sources not read as plain UTF-8
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "askcolleague_version": __version__,
                "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "model": embedder.describe(),
                "chunker": chunker_cfg.to_dict(),
                "vectors": {"file": "vectors.faiss", "faiss": "IndexIDMap2(IndexFlatIP)", "metric": "inner product",
                            "normalized": True, "ids": "chunks.id in store.sqlite"},
                "store": {"file": "store.sqlite", "engine": "sqlite3", "fts": "fts5 porter unicode61"},
                "lexical": {"folder": lexical.FOLDER, "scoring": "FTS5 bm25()", **lex},
                "abstain_calibration": calibration.calibrate(fi, embedder),
                "roots": [{"given": display(r), **_path_entry(Path(r).absolute())} for r in roots],
                "people_files": [{"given": display(p), **_path_entry(Path(p).absolute()), "key": people_keys.get(str(p))}
                                 for p in all_people_files],
                "people_files_hash": _people_hash(all_people_files),
                "forgotten": len(forgotten),
                "sources": [{**dict(zip(("key", "path", "kind", "hash", "size", "docs", "chunks"), r)),
                             **({"encoding": encs[r[0]]} if r[0] in encs else {})} for r in src_rows],
                "skipped": [asdict(s) for s in report.skipped],
                "kept_previous": [asdict(s) for s in report.kept],
                "counts": {"sources": len(src_rows), "documents": len(docs_rows), "chunks": len(chunks),
                           "people": len(people), "profiles": n_profiles},
                "build": {"embedded": report.embedded, "reused_vectors": report.reused_vectors,
                          "seconds": round(time.time() - t0, 2), "update": update, "rebuild": rebuild},
                "command": [display(a) for a in (command or sys.argv)],
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
            if old_store is not None:
                old_store.close()
                old_store = None
            final = _publish(index_path, tmp)
        except BaseException as e:
            for st in (store, old_store):
                if st is not None:
                    try:
                        st.close()
                    except Exception:
                        pass
            _discard_unpublished(index_path, tmp)
            if is_disk_full(e):
                raise disk_full_error(index_path, need, old_vdir) from None
            raise
        _collect_garbage(index_path, keep=[final, old_vdir])
        report.version = final.name
        report.seconds = time.time() - t0
        return report


FORGOTTEN = "forgotten.json"


def read_forgotten(index_path: Path) -> list[dict]:
    """People removed with `forget`: [{person_id, name, emails, names, handles, with_content, at}]."""
    f = Path(index_path) / FORGOTTEN
    if not f.is_file():
        return []
    try:
        return json.loads(f.read_text())
    except ValueError as e:
        raise IndexFormatError(f"{f}: unreadable ({e}); fix or delete it (people in it would come back)") from None


def _forgotten(p: Person, entries: list[dict], content: bool = False) -> bool:
    from .people import normalize_name

    for e in entries:
        if content and not e.get("with_content"):
            continue
        if (p.person_id == e["person_id"] or (p.email and p.email in e["emails"])
                or normalize_name(p.name) in e["names"] or set(p.handles.items()) & {tuple(h) for h in e["handles"]}):
            return True
    return False


def forget(index_path: str | Path, person: str, with_content: bool = False, settings: Settings | None = None,
           embedder: Embedder | None = None, warn: Callable[[str], None] | None = None) -> BuildReport:
    """Remove a person's profile (and with `with_content`, everything they wrote) from the index, for good.

    The person is recorded in ``forgotten.json`` in the index folder, so later builds and updates
    keep them out even though the sources still mention them; then the index is rebuilt from its
    sources (reusing all other vectors). The feedback log's entries that cite their passages are
    deleted too (with `with_content`).
    """
    from .errors import ConfigError
    from .people import normalize_name
    from .retrieval import Retriever

    index_path = Path(index_path)
    idx = Index.open(index_path, settings, embedder=embedder)
    try:
        pids = Retriever(idx).person_ids(person)
        if not pids:
            raise ConfigError(f"no person {person!r} in {index_path}; see `askcolleague people list`")
        entries = read_forgotten(index_path)
        removed_chunks: list[str] = []
        for pid in pids:
            p = idx.store.person(pid)
            entries.append({
                "person_id": p.person_id, "name": p.name, "emails": [e for e in [p.email] if e],
                "names": sorted({normalize_name(n) for n in [p.name, *p.aliases]}),
                "handles": sorted(p.handles.items()), "with_content": with_content,
                "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
            q = "SELECT c.chunk_id FROM chunk_people l JOIN chunks c ON c.id = l.chunk WHERE l.person_id = ?"
            removed_chunks += [r[0] for r in idx.store.db.execute(q, (pid,))]
    finally:
        idx.close()
    tmp = index_path / (FORGOTTEN + ".tmp")
    tmp.write_text(json.dumps(entries, indent=2, ensure_ascii=False))
    os.replace(tmp, index_path / FORGOTTEN)
    report = build(None, index_path, settings=settings, embedder=embedder, update=True, warn=warn)
    if with_content:
        from . import feedback

        feedback.forget_chunks(index_path, removed_chunks)
    return report


def _people_hash(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(Path(f).resolve() for f in files):
        h.update(str(f).encode())
        if Path(f).is_file():
            h.update(file_hash(Path(f)).encode())
    return h.hexdigest()


def _doc_row(d: Doc) -> dict:
    return {"doc_id": d.doc_id, "source": d.source, "title": d.title, "source_type": d.source_type,
            "url": d.url, "date": d.date, "tags": d.tags, "groups": d.groups,
            "authors": [asdict(a) for a in d.authors], "meta": d.meta}


def status(index_path: str | Path) -> dict:
    """The manifest of the live version plus its folder and size (no model loaded)."""
    path = Path(index_path)
    vdir, m = live_version(path)
    m = dict(m)
    m["index"] = display(path)
    m["version"] = vdir.name
    m["bytes"] = sum(f.stat().st_size for f in vdir.iterdir() if f.is_file())
    return m
