"""The build: sources → chunks → people → vectors → a new published index version.

`build()` runs the phases (each a function below) under the index's lock; unchanged sources and
vectors are reused from the previous version; one bad file is skipped with a one-line reason and
never aborts the build; the new version is written through the backend's writer (the folder's
index.folder.FolderWriter, or PostgreSQL's index.postgres.PgWriter) and published atomically.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import queue
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import __version__, safeyaml
from ..embed import Embedder, get_embedder, model_setting_for, runtime_for
from ..errors import ConfigError, IndexNotFoundError, LoadError, MetadataError, NothingIndexedError
from ..index import backend_for, is_uri, shown
from ..index.folder import FORMAT, FORMAT_VERSION, check_model
from ..index.sqlite import chunk_from_row
from ..loaders import SourceSpec, discover, encodings_of, load_source, source_key, valid_text
from ..loaders.base import display, file_hash
from ..loaders.meta import SIDECAR_SUFFIXES
from ..loaders.pool import ParsePool
from ..models import AuthorRef, Block, Chunk, Doc, Person, SourceError, normalize_name
from ..settings import Settings
from . import calibration
from .chunker import ChunkerConfig, chunk_doc, embed_key
from .identity import IdentityResolver, load_people, profile_text
from .resume import ResumeCache


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
    # chunks whose exact embed text another chunk of this build had: embedded once, the vector shared
    # (embedded + reused_vectors + deduplicated + resumed = chunks)
    deduplicated: int = 0
    # vectors a killed build had embedded (indexing/resume.py): not embedded again
    resumed: int = 0
    # seconds per phase, in order (STAGES); phases not run are absent
    stages: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"] = [asdict(s) for s in self.skipped]
        d["kept"] = [asdict(s) for s in self.kept]
        return d

    def summary(self, stages: bool = False) -> str:
        """One line; with ``stages=True`` also the seconds of each phase that took 0.05 s or more."""
        parts = [f"{self.sources_indexed} indexed", f"{len(self.skipped)} skipped"]
        if self.kept:
            parts.append(f"{len(self.kept)} kept from the previous version")
        dedup = f", deduplicated {self.deduplicated}" if self.deduplicated else ""
        dedup += f", resumed {self.resumed}" if self.resumed else ""
        took = f"{self.seconds:.1f}s"
        shown = [f"{k} {v:.1f}" for k, v in self.stages.items() if v >= 0.05] if stages else []
        if shown:
            took += ": " + ", ".join(shown)
        return (", ".join(parts) + f" — {self.docs} docs, {self.chunks} chunks, {self.people} people; "
                f"embedded {self.embedded}{dedup}, reused {self.reused_vectors} ({took})")


# the build's phases, as BuildReport.stages names them:
#   open      the index's lock, its live version and the list of sources
#   model     loading the embedding model (only when build() loads it)
#   discover  finding the sources in the folders given, reading the people files
#   parse     reading and parsing the sources (or carrying unchanged ones over), hashing them
#   chunk     chunking the parsed documents and the profiles (token counts in the model's tokenizer)
#   people    profiles as documents, identity resolution, chunk↔person links
#   embed     vectors reused from the previous version, the rest embedded (identical texts once)
#   write     the new version's store, vectors and BM25 postings (the backend's writer)
#   calibrate the abstain threshold (off-topic probes embedded and searched)
#   publish   the manifest, and the new version made live
STAGES = ("open", "model", "discover", "parse", "chunk", "people", "embed", "write", "calibrate", "publish")


@contextmanager
def _stage(report: "BuildReport", name: str):
    """Add the time the block takes to ``report.stages[name]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        report.stages[name] = report.stages.get(name, 0.0) + time.perf_counter() - t


def _ordered(stages: dict[str, float]) -> dict[str, float]:
    return {k: round(stages[k], 3) for k in STAGES if k in stages}


def read_sources_yaml(path: Path) -> tuple[list[Path], list[Path]]:
    """Sources and people files listed in a sources.yaml (paths relative to its folder)."""
    import yaml  # (lazy: loaded only when used, so start-up stays fast)

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
        from tqdm import tqdm  # (loaded only when a bar is shown: start-up stays fast)

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
    log: Callable[[str], None] | None = None,
    ray: str | None = None,
) -> BuildReport:
    """Build (or with ``update=True`` refresh) an index; return a BuildReport.

    Unchanged sources are carried over from the previous version without re-reading, and every
    chunk whose exact text was embedded before reuses its vector, so only new or changed
    files/threads reach the model. With ``rebuild=True`` nothing is reused (use it to change model).
    A file that fails is skipped with a warning; if an earlier version had it, that version is kept.

    The phases: which sources → the model → the previous version → discover → people files →
    read (or carry over) and chunk each source → profiles and identity → embed (reusing vectors) →
    write and publish the new version (index.folder.FolderWriter).

    The phases from reading to writing run as a pipeline (see `_stream`); `log` (a function taking a
    line) gets a progress line with the time left every 30 s of a long build (the CLI passes it when
    stderr is not a terminal). A killed build restarts from the vectors it had embedded
    (indexing/resume.py). ``ray="local"`` or a cluster's address parses, chunks and embeds the changed
    sources on a Ray cluster (indexing/distributed.py); the result is written here as ever.
    """
    t0 = time.time()
    p0 = time.perf_counter()
    pre: dict[str, float] = {}  # the phases before the report exists
    settings = settings or Settings.load()
    backend = backend_for(index_path or settings.index)
    index_path = backend.location(index_path or settings.index)
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    bar = _Progress(progress)

    with backend.lock(index_path, wait=wait):
        prev = backend.previous(index_path)  # (the live version; what a crashed build left is removed)
        try:
            old_manifest = prev.manifest if prev is not None else None
            roots, ppl_files = _roots(sources, people_files, update, old_manifest, backend.display(index_path))
            pre["open"] = time.perf_counter() - p0
            if embedder is None:
                t = time.perf_counter()
                embedder = _embedder_for(settings, update, old_manifest)
                _open_model(embedder)
                pre["model"] = time.perf_counter() - t
            # reuse is only possible from an index made by the same model
            if old_manifest is not None and not rebuild:
                check_model(old_manifest, embedder, index_path)
            sources = _RaySources(ray, settings, embedder) if ray else None
            return _build(roots, ppl_files, backend, index_path, settings, embedder, prev, rebuild, update, bar, warn,
                          command, t0, pre, log=log, sources=sources)
        finally:
            if prev is not None:
                prev.close()


def _roots(sources, people_files, update: bool, old_manifest: dict | None, index_path: str) -> tuple[list[Path], list[Path]]:
    """Phase 1: the folders/files and people files to read."""
    if update:
        if old_manifest is None:
            raise IndexNotFoundError(f"{index_path}: no index to update; run `askcolleague index build SOURCES --index {index_path}` first")
        roots = [_entry_path(r) for r in old_manifest["roots"]] + [Path(s) for s in sources or []]
        ppl_files = [_entry_path(r) for r in old_manifest["people_files"]] + [Path(p) for p in people_files or []]
        return roots, ppl_files
    roots = [Path(s) for s in sources or []]
    ppl_files = [Path(p) for p in people_files or []]
    if not roots and not ppl_files:
        sy = Path("ingest/sources.yaml")
        if not sy.is_file():
            raise ConfigError("no sources given and no ingest/sources.yaml; name the folders/files to index")
        roots, ppl_files = read_sources_yaml(sy)
    return roots, ppl_files


def _embedder_for(settings: Settings, update: bool, old_manifest: dict | None) -> Embedder:
    """Phase 2: the model (an update keeps the model the index was built with)."""
    model, runtime = settings.model, settings.runtime
    if update and old_manifest and not model:
        model = model_setting_for(old_manifest["model"]["id"])
        runtime = runtime_for(old_manifest["model"]["id"], runtime)
    return get_embedder(model or None, batch_size=settings.batch_size, threads=settings.threads, runtime=runtime)


def _open_model(embedder: Embedder) -> None:
    """Load the model's weights now, so that the `model` stage counts them and not `embed`: the ONNX
    embedder opens its session, the torch one its model, on first use."""
    for attr in ("session", "model"):
        try:
            getattr(embedder, attr, None)
        except Exception:  # noqa: BLE001 (the first batch tries again, and says what is wrong)
            pass


def _load_profiles(files: list[Path], max_bytes: int, report: BuildReport, warn) -> tuple[list[Person], dict[str, str]]:
    """Phase 4: the people files' profiles, and each file's source key."""
    profiles: list[Person] = []
    people_keys: dict[str, str] = {}
    for pf in files:
        key = display(source_key(pf, pf))
        people_keys[str(pf)] = key
        try:
            if not pf.is_file():
                raise LoadError("no such people file; check the path")
            profiles.extend(valid_text(p) for p in load_people(pf, max_bytes=max_bytes))
        except LoadError as e:
            report.skipped.append(SourceError(display(pf), str(e)))
            warn(f"{display(pf)}: {e}")
    return profiles, people_keys


def _read_sources(specs: list[SourceSpec], old, same_chunker: bool, max_bytes: int, settings: Settings,
                  embedder: Embedder, chunker_cfg: ChunkerConfig, report: BuildReport, hashes: dict, warn,
                  sources=None) -> Iterator[tuple[SourceSpec, tuple, list[dict], list[Chunk], np.ndarray | None]]:
    """Phase 5 (the pipeline's first stage, in its own thread): each source read (in the parse pool, or
    on a Ray cluster: `sources`) and chunked, or carried over unchanged from the previous version; a
    file that fails keeps its previous version when there is one. Yields, in the order of `specs`,
    (spec, its sources row, its documents, its chunks, their vectors when the cluster embedded them)."""
    old_sources = old.sources if old else {}
    wanted = [s for s in specs if not (same_chunker and s.key in old_sources)]
    if sources is not None:  # parsed, chunked and embedded on a cluster (indexing/distributed.py)
        remote = sources(wanted)
        pool = None
    else:
        remote = None
        pool = ParsePool(specs, max_bytes, settings, wanted=lambda s: s in wanted,
                         load=load_source)  # sources parsed ahead in worker processes, with a timeout
    pending: dict[str, tuple] = {}

    def from_remote(spec: SourceSpec) -> tuple:
        while spec.key not in pending:
            got = next(remote)  # (spec, docs or LoadError, chunks, vectors), in the order of `wanted`
            pending[got[0].key] = got[1:]
        return pending.pop(spec.key)

    try:
        for spec in specs:
            vecs = None
            t = time.perf_counter()
            try:
                h, size = hashes.pop(spec.key, None) or source_hash(spec)
            except OSError as e:
                report.skipped.append(SourceError(display(spec.path), f"cannot read ({e.strerror})"))
                warn(f"{display(spec.path)}: cannot read ({e.strerror})")
                continue
            prev = old_sources.get(spec.key)
            if prev and prev["hash"] == h and prev["status"] == "ok" and same_chunker:
                src_chunks = [chunk_from_row(r) for r in old.store.chunks_of_source(spec.key)]
                src_docs = old.store.docs_of_source(spec.key)
                report.sources_reused += 1
                report.stages["parse"] = report.stages.get("parse", 0.0) + time.perf_counter() - t
            else:
                try:
                    if remote is not None and spec in wanted:
                        docs, src_chunks, vecs = from_remote(spec)
                        if isinstance(docs, LoadError):
                            raise docs
                    else:
                        docs = pool.load(spec) if pool is not None else load_source(spec, max_bytes)
                        src_chunks = None
                except LoadError as e:
                    report.stages["parse"] = report.stages.get("parse", 0.0) + time.perf_counter() - t
                    err = SourceError(display(spec.path), str(e))
                    if prev and old is not None and isinstance(e, MetadataError):
                        # its access groups may have changed: the old version is not kept either
                        err.reason += " (the previously indexed version is removed: its groups may have changed)"
                        report.skipped.append(err)
                        warn(f"{display(spec.path)}: {err.reason}")
                        continue
                    if prev and old is not None:
                        report.kept.append(err)
                        warn(f"{display(spec.path)}: {e} (keeping the previously indexed version)")
                        src_chunks = [chunk_from_row(r) for r in old.store.chunks_of_source(spec.key)]
                        src_docs = old.store.docs_of_source(spec.key)
                        h, size = prev["hash"], prev["size"]
                        vecs = None
                    else:
                        report.skipped.append(err)
                        warn(f"{display(spec.path)}: {e}")
                        continue
                else:
                    report.stages["parse"] = report.stages.get("parse", 0.0) + time.perf_counter() - t
                    if src_chunks is None:
                        with _stage(report, "chunk"):
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
            row = (spec.key, display(spec.path.absolute()), spec.kind, h, size, len(src_docs), len(src_chunks))
            yield spec, row, src_docs, src_chunks, vecs
    finally:
        if pool is not None:
            pool.close()
        if remote is not None and hasattr(remote, "close"):
            remote.close()


class _RaySources:
    """The changed sources parsed, chunked and embedded on a Ray cluster (indexing/distributed.py), in
    their order, by the build's own model (its setting and runtime travel to the workers)."""

    def __init__(self, address: str, settings: Settings, embedder: Embedder) -> None:
        from . import distributed  # (lazy: Ray is an optional extra)

        distributed.require_ray()  # (a clear error now, not after the sources are listed)
        self.address, self.settings, self.embedder, self._mod = address, settings, embedder, distributed
        self._gen = None

    def __call__(self, specs: list[SourceSpec]):
        s = self.settings
        model_id = self.embedder.describe()["id"]
        self._gen = self._mod.ray_sources(specs, int(s.max_file_mb * 1024 * 1024), s,
                                          ChunkerConfig(s.chunk_tokens, s.chunk_overlap), model_setting_for(model_id),
                                          runtime_for(model_id, s.runtime), self.address)
        return self._gen

    @property
    def workers(self) -> int:
        return self._mod.workers_used()


class _Redo(Exception):
    """Who is forgotten came out differently at the end of the build than while its chunks streamed
    (an identifier learned later): the write is done again, knowing them (no vector is embedded twice)."""

    def __init__(self, person_ids: set[str]) -> None:
        self.person_ids = person_ids


class _People:
    """Phase 6, a chunk at a time: identity resolution (every author → one person), forgotten people
    removed, the chunk↔person links, and the private-channel groups of their members."""

    def __init__(self, resolver: IdentityResolver, forgotten: list[dict], known_forgotten: set[str]) -> None:
        self.resolver, self.forgotten, self.known = resolver, forgotten, known_forgotten
        self.decided: dict[str, tuple[bool, bool]] = {}  # person id → (forgotten with content, forgotten)
        self.ids: set[str] = set()
        self.member_groups: dict[str, set[str]] = {}

    def _judge(self, p: Person) -> tuple[bool, bool]:
        d = self.decided.get(p.person_id)
        if d is None:
            if p.person_id in self.known:
                d = (True, True)
            elif self.forgotten:
                d = (_forgotten(p, self.forgotten, content=True), _forgotten(p, self.forgotten))
            else:
                d = (False, False)
            self.decided[p.person_id] = d
        return d

    def accept(self, chunks: list[Chunk], docs: list[dict], first: int) -> tuple[list[int], list[dict], list[tuple]]:
        """Which of a source's chunks to keep (their positions), its documents, and the links of the
        kept chunks, numbered from `first`."""
        keep: list[int] = []
        links: list[tuple[int, str, str, float]] = []
        for j, c in enumerate(chunks):
            ps = [self.resolver.resolve(a) for a in c.authors]
            if ps and all(self._judge(p)[0] for p in ps):
                continue
            rid = first + len(keep)
            keep.append(j)
            role = "profile" if c.source_type == "profile" else "author"
            for p in ps:
                if not self._judge(p)[1]:
                    links.append((rid, p.person_id, role, 1.0 / max(len(c.authors), 1)))
                    self.ids.add(p.person_id)
        if self.forgotten or self.known:
            live = {chunks[j].doc_id for j in keep}
            docs = [d for d in docs if d["doc_id"] in live]
        # members of private channels (Slack) get the channel's own group for access control — only
        # that one: a group a sidecar gave the export is not theirs to have
        for d in docs:
            meta = d.get("meta") or {}
            own = {g for g in d["groups"] if g == f"slack:{meta.get('channel')}"}
            for member in meta.get("members", []) if own else []:
                ref = AuthorRef(**member) if isinstance(member, dict) else AuthorRef(handle=str(member))
                self.member_groups.setdefault(self.resolver.resolve(ref).person_id, set()).update(own)
        return keep, docs, links

    def final(self) -> list[Person]:
        """Everyone with a profile or a kept link, with their groups; raises _Redo when a decision made
        while streaming no longer holds."""
        changed = {p.person_id for p in self.resolver.people() if p.person_id in self.decided
                   and self.decided[p.person_id] != (_forgotten(p, self.forgotten, content=True) or p.person_id in self.known,
                                                     _forgotten(p, self.forgotten) or p.person_id in self.known)}
        if changed:
            raise _Redo(changed | self.known)
        people = [p for p in self.resolver.people()
                  if (p.has_profile or p.person_id in self.ids) and not _forgotten(p, self.forgotten)
                  and p.person_id not in self.known]
        for p in people:
            p.groups = sorted(set(p.groups) | self.member_groups.get(p.person_id, set()))
        return people


class _Ahead:
    """Runs a generator in a thread of its own, at most `size` items ahead of the consumer (a bounded
    queue); the generator's exception is raised in the consumer; `close` stops it."""

    def __init__(self, gen, size: int, name: str) -> None:
        self.q: queue.Queue = queue.Queue(maxsize=max(size, 1))
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, args=(gen,), daemon=True, name=name)
        self.t.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, gen) -> None:
        try:
            for item in gen:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as e:  # noqa: BLE001 (raised in the consumer)
            self._put(("error", e))
        finally:
            gen.close()

    def __iter__(self):
        return self.items()

    def items(self, idle: float | None = None):
        """The items; with `idle`, also None each time nothing came for that many seconds."""
        while True:
            try:
                kind, v = self.q.get(timeout=idle)
            except queue.Empty:
                yield None
                continue
            if kind == "end":
                return
            if kind == "error":
                raise v
            yield v

    def close(self, wait: float = 5.0) -> None:
        """Stop the thread; after `wait` seconds (a parse in progress) leave it to stop by itself: it is
        a daemon, and the parse pool's workers are stopped when the pool is collected or the process exits."""
        self.stop.set()
        deadline = time.monotonic() + wait
        while self.t.is_alive() and time.monotonic() < deadline:
            try:
                self.q.get(timeout=0.1)
            except queue.Empty:
                pass


class _WriteBehind:
    """The writer's calls, made in a thread of its own through a bounded queue (the pipeline's last
    stage); the time they take is the `write` stage. An error stops the build at its next call."""

    def __init__(self, writer, size: int, report: BuildReport) -> None:
        self.writer, self.report = writer, report
        self.q: queue.Queue = queue.Queue(maxsize=max(size, 1))
        self.error: BaseException | None = None
        self.cancelled = False
        self.t = threading.Thread(target=self._run, daemon=True, name="askcolleague-write")
        self.t.start()

    def _run(self) -> None:
        while True:
            op = self.q.get()
            if op is None:
                return
            if self.error is not None or self.cancelled:
                continue
            name, args = op
            t = time.perf_counter()
            try:
                getattr(self.writer, name)(*args)
            except BaseException as e:  # noqa: BLE001 (raised in the build's thread)
                self.error = e
            self.report.stages["write"] = self.report.stages.get("write", 0.0) + time.perf_counter() - t

    def __call__(self, name: str, *args) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put((name, args), timeout=0.2)
                return
            except queue.Full:
                continue

    def join(self, cancel: bool = False) -> None:
        """Wait for every call to be made (or, with `cancel`, for the one being made); raise its error."""
        self.cancelled = cancel
        if cancel and hasattr(self.writer, "interrupt"):
            self.writer.interrupt()  # (a long SQL statement under way stops now, not when it is done)
        self.q.put(None)
        self.t.join()
        if self.error is not None and not cancel:
            raise self.error


class _Window:
    """Phase 7, a window of chunks at a time: vectors reused by exact embed text (the previous version,
    then this build's and a killed build's vectors in the resume cache), each distinct text of the
    window embedded once in length-sorted batches, every new vector kept in the resume cache."""

    def __init__(self, embedder: Embedder, old, cache: ResumeCache, batch_size: int, report: BuildReport,
                 probes: calibration.ProbeBest, bar) -> None:
        self.embedder, self.old, self.cache, self.bs = embedder, old, cache, max(batch_size, 1)
        self.report, self.probes, self.bar = report, probes, bar
        self.chunks: list[Chunk] = []
        self.vecs: list[np.ndarray | None] = []  # given with the chunk (a cluster embedded it), else None

    def add(self, chunks: list[Chunk], vecs: np.ndarray | None) -> None:
        self.chunks.extend(chunks)
        self.vecs.extend(vecs if vecs is not None else [None] * len(chunks))

    def __len__(self) -> int:
        return len(self.chunks)

    def embed(self, most: int) -> tuple[list[Chunk], list[str], np.ndarray]:
        """The first `most` chunks waiting, with their embed keys and vectors."""
        chunks, given = self.chunks[:most], self.vecs[:most]
        del self.chunks[:most], self.vecs[:most]
        keys = [embed_key(c) for c in chunks]
        vecs = np.zeros((len(chunks), self.embedder.dim), dtype=np.float32)
        have = np.zeros(len(chunks), dtype=bool)
        rep = self.report
        if self.old is not None:
            by_key = self.old.vectors_by_key(keys)
            for k, h in enumerate(keys):
                if (v := by_key.get(h)) is not None:
                    vecs[k], have[k] = v, True
            rep.reused_vectors += int(have.sum())
        cached = self.cache.get_many([h for k, h in enumerate(keys) if not have[k]])
        first: dict[str, int] = {}
        todo: list[int] = []
        copies: list[tuple[int, int]] = []
        new_given: list[int] = []
        for k, h in enumerate(keys):
            if have[k]:
                continue
            if h in cached:
                vecs[k], resumed = cached[h]
                have[k] = True
                if resumed:
                    rep.resumed += 1
                else:
                    rep.deduplicated += 1
                continue
            j = first.setdefault(h, k)
            if j != k:
                copies.append((k, j))
            elif given[k] is not None:
                vecs[k] = given[k]
                new_given.append(k)
            else:
                todo.append(k)
        todo.sort(key=lambda k: chunks[k].n_tokens)
        rep.embedded += len(todo) + len(new_given)
        rep.deduplicated += len(copies)
        for i in range(0, len(todo), self.bs):
            part = todo[i:i + self.bs]
            vecs[part] = self.embedder.embed_batch([chunks[k].embed_text for k in part])
            self.bar.update(len(part))
        new = sorted(todo + new_given)
        self.cache.add([keys[k] for k in new], vecs[new])
        if copies:
            dst, src = zip(*copies)
            vecs[list(dst)] = vecs[list(src)]
        self.probes.add(vecs)
        return chunks, keys, vecs


def _sizes(specs: list[SourceSpec]) -> int:
    total = 0
    for s in specs:
        try:
            total += sum(f.stat().st_size for f in s.path.rglob("*") if f.is_file()) if s.path.is_dir() else s.path.stat().st_size
        except OSError:
            pass
    return total


PROGRESS_EVERY = 30.0  # seconds between progress lines when stderr is not a terminal
# When no source has come from the reader for this many seconds (slow formats: OCR, LibreOffice), the
# chunks waiting are embedded without waiting for a full window, so parsing and embedding overlap.
# (Such a build's batches then depend on timing; with the int8 runtimes a vector depends slightly on
# its batch: within 0.993 cosine of another batching's, as between any two builds of other windows.)
IDLE_FLUSH = 2.0


class _Eta:
    """Progress of a long build: a bar on a terminal, else (`log`) a line on stderr every 30 s, with
    the bytes of sources done, chunks, chunks/s and the time left estimated from the bytes."""

    def __init__(self, bar, total_bytes: int, n_sources: int, log: Callable[[str], None] | None) -> None:
        self.total, self.n_sources, self.log = max(total_bytes, 1), n_sources, log
        self.t0 = self.last = time.monotonic()
        self.done = self.sources = self.chunks = 0
        self.pb = bar(total=total_bytes, desc="Indexing", unit="B")
        if hasattr(self.pb, "unit_scale"):
            self.pb.unit_scale = True

    def step(self, size: int, chunks: int) -> None:
        self.done += size
        self.sources += 1
        self.chunks += chunks
        self.pb.update(size)
        if hasattr(self.pb, "set_postfix_str"):
            self.pb.set_postfix_str(f"{self.chunks:,} chunks", refresh=False)
        now = time.monotonic()
        if self.log is not None and now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.log(self.line(now))

    def line(self, now: float) -> str:
        took = now - self.t0
        left = took * (self.total - self.done) / self.done if self.done else float("nan")
        eta = "" if left != left else f", about {_minutes(left)} left"
        return (f"progress: {self.sources:,}/{self.n_sources:,} sources ({100 * self.done / self.total:.0f}% of the bytes), "
                f"{self.chunks:,} chunks, {self.chunks / max(took, 1e-9):.0f} chunks/s{eta}")

    def close(self) -> None:
        self.pb.close()


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _build(roots, ppl_files, backend, index_path, settings: Settings, embedder: Embedder, prev, rebuild: bool,
           update: bool, bar, warn, command, t0: float, pre: dict[str, float] | None = None, log=None,
           sources=None) -> BuildReport:
    old_manifest = prev.manifest if prev is not None else None
    old = prev if not rebuild else None  # what vectors and unchanged sources are reused from
    report = BuildReport(index=backend.display(index_path), version="", stages=dict(pre or {}))
    with _stage(report, "discover"):
        specs, found_people, problems = discover(roots, follow_symlinks=bool(settings.follow_symlinks))
        for path, reason in problems:
            report.skipped.append(SourceError(path, reason))
            warn(f"{path}: {reason}")
        all_people_files = list({Path(p).resolve(): Path(p) for p in [*ppl_files, *found_people]}.values())
        max_bytes = int(settings.max_file_mb * 1024 * 1024)
        profiles, people_keys = _load_profiles(all_people_files, max_bytes, report, warn)
    # people removed with `askcolleague forget` stay removed, whatever the sources say
    with _stage(report, "people"):
        forgotten = backend.read_forgotten(index_path)

    chunker_cfg = ChunkerConfig(settings.chunk_tokens, settings.chunk_overlap)
    same_chunker = bool(old_manifest) and old_manifest.get("chunker") == chunker_cfg.to_dict()
    hashes: dict[str, tuple[str, int]] = {}
    if update and old is not None and same_chunker:
        # an update that finds nothing changed stops here, before anything is read or written
        with _stage(report, "parse"):
            try:
                hashes = {s.key: source_hash(s) for s in specs}
            except OSError:
                hashes = {}
            unchanged = bool(hashes) and len(hashes) == len(specs) and \
                {(r["key"], r["hash"]) for r in old.sources.values() if r["status"] == "ok"} == \
                {(k, h) for k, (h, _) in hashes.items()} and len(old.sources) == len(specs) and \
                old_manifest.get("people_files_hash") == _people_hash(all_people_files) and \
                old_manifest.get("forgotten") == len(forgotten) and not report.skipped
        if unchanged:
            counts = old_manifest.get("counts", {})
            report.changed = False
            report.version = prev.name
            report.sources_reused = len(specs)
            report.docs, report.chunks, report.people = counts.get("documents", 0), counts.get("chunks", 0), counts.get("people", 0)
            report.seconds = time.time() - t0
            report.stages = _ordered(report.stages)
            return report

    total_bytes = _sizes(specs)
    need = max(prev.bytes if prev is not None and hasattr(prev, "bytes") else 0, 4 * total_bytes)
    cache = ResumeCache(backend.resume_dir(index_path), embedder.describe(), embedder.dim)
    known: set[str] = set()
    try:
        while True:
            stream_report = BuildReport(index=report.index, version="", stages=dict(report.stages),
                                        skipped=list(report.skipped))
            try:
                return _stream(specs, profiles, people_keys, all_people_files, forgotten, known, old, old_manifest,
                               same_chunker, chunker_cfg, hashes if not known else {}, max_bytes, total_bytes, need,
                               roots, backend, index_path, settings, embedder, prev, cache, rebuild, update, bar,
                               warn, log, command, t0, stream_report, sources)
            except _Redo as redo:
                known = redo.person_ids
    finally:
        cache.close()


def _stream(specs, profiles, people_keys, all_people_files, forgotten, known, old, old_manifest, same_chunker,
            chunker_cfg, hashes, max_bytes, total_bytes, need, roots, backend, index_path, settings, embedder, prev,
            cache, rebuild, update, bar, warn, log, command, t0, report: BuildReport, sources) -> BuildReport:
    """Parse ‖ chunk → people → embed ‖ write: the sources are read and chunked in one thread (parsed in
    the pool's processes), embedded here a window at a time, and written in another thread, each
    stage at most a few items ahead of the next, so memory is set by `build_window`, not the corpus."""
    with _stage(report, "people"):
        resolver = IdentityResolver(profiles)
        people = _People(resolver, forgotten, known)
    probes = calibration.ProbeBest(embedder)
    window_size = max(int(settings.build_window), 1)
    writer = backend.writer(index_path, prev, need)
    writer.begin(embedder.dim)
    write = _WriteBehind(writer, 4, report)
    reader = _Ahead(_read_sources(specs, old, same_chunker, max_bytes, settings, embedder, chunker_cfg, report,
                                  dict(hashes), warn, sources), 8, "askcolleague-read")
    eta = _Eta(bar, total_bytes, len(specs), log)
    embed_bar = bar(total=None, desc="Embedding", unit="chunk")
    window = _Window(embedder, old, cache, settings.batch_size, report, probes, embed_bar)
    src_rows: list[tuple] = []
    encodings: dict[str, set[str]] = {}
    n = 0
    n_docs = 0

    def flush(most: int = window_size) -> None:
        nonlocal n
        with _stage(report, "embed"):
            chunks, keys, vecs = window.embed(most)
        write("add_chunks", n, chunks, keys, vecs)
        n += len(chunks)

    def take(chunks: list[Chunk], docs: list[dict], vecs: np.ndarray | None) -> None:
        nonlocal n_docs
        with _stage(report, "people"):
            keep, docs, links = people.accept(chunks, docs, n + len(window))
        kept = [chunks[j] for j in keep]
        window.add(kept, None if vecs is None else vecs[keep] if len(keep) else vecs[:0])
        n_docs += len(docs)
        for k, enc in encodings_of(docs).items():
            encodings.setdefault(k, set()).update(enc.split(", "))
        if docs:
            write("add_docs", docs)
        if links:
            write("add_links", links)
        while len(window) >= window_size:  # (one big source is embedded a window at a time too)
            flush()

    try:
        for got in reader.items(idle=IDLE_FLUSH):
            if got is None:  # the sources come slowly (OCR, LibreOffice): embed what is waiting meanwhile
                if len(window) >= max(int(settings.batch_size), 1):
                    flush(len(window))
                continue
            spec, row, docs, chunks, vecs = got
            src_rows.append(row)
            take(chunks, docs, vecs)
            eta.step(row[4] or 0, len(chunks))
        if n + len(window) == 0 and (specs or not profiles):
            raise NothingIndexedError(
                f"nothing could be indexed ({len(report.skipped)} skipped); fix the files named above"
                + (f" — the previous index at {backend.display(index_path)} is unchanged" if prev else ""))
        # profiles become chunks too (after every source: the same ids as ever)
        with _stage(report, "people"):
            profile_docs = _profile_docs([p for p in resolver.people() if p.has_profile and not _forgotten(p, forgotten)
                                          and p.person_id not in known], lambda s: people_keys.get(s, s))
        for d in profile_docs:
            with _stage(report, "chunk"):
                chunks = chunk_doc(d, embedder, chunker_cfg)
            take(chunks, [_doc_row(d)], None)
        while len(window):
            flush()
        with _stage(report, "people"):
            final_people = people.final()
        write("add_sources", src_rows)
        write("add_people", final_people)
        write("finish")
        write.join()
    except BaseException as e:
        reader.close()
        write.join(cancel=True)
        eta.close()
        embed_bar.close()
        if isinstance(e, NothingIndexedError):
            cache.discard()
        writer.abort(e)
    reader.close()
    eta.close()
    embed_bar.close()

    old_ids_set = {(r["key"], r["hash"]) for r in old.sources.values()} if old is not None else None
    report.changed = rebuild or old_manifest is None or report.embedded > 0 or \
        old_ids_set != {(r[0], r[3]) for r in src_rows} or \
        (old_manifest or {}).get("people_files_hash") != _people_hash(all_people_files) or \
        (old_manifest or {}).get("forgotten") != len(forgotten)
    report.docs, report.chunks, report.people = n_docs, n, len(final_people)
    if update and not report.changed:
        writer.abort(None)
        cache.discard()
        report.version = prev.name
        report.seconds = time.time() - t0
        report.stages = _ordered(report.stages)
        return report

    t_publish = time.perf_counter()
    try:
        with _stage(report, "calibrate"):
            abstain = probes.result()
        t_publish = time.perf_counter()
        encs = {k: ", ".join(sorted(v)) for k, v in encodings.items()}  # sources not read as plain UTF-8
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "askcolleague_version": __version__,
            "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": embedder.describe(),
            "chunker": chunker_cfg.to_dict(),
            **writer.describe(),
            "abstain_calibration": abstain,
            "roots": [{"given": display(r), **_path_entry(Path(r).absolute())} for r in roots],
            "people_files": [{"given": display(p), **_path_entry(Path(p).absolute()), "key": people_keys.get(str(p))}
                             for p in all_people_files],
            "people_files_hash": _people_hash(all_people_files),
            "forgotten": len(forgotten),
            "sources": [{**dict(zip(("key", "path", "kind", "hash", "size", "docs", "chunks"), r)),
                         **({"encoding": encs[r[0]]} if r[0] in encs else {})} for r in src_rows],
            "skipped": [asdict(s) for s in report.skipped],
            "kept_previous": [asdict(s) for s in report.kept],
            "counts": {"sources": len(src_rows), "documents": n_docs, "chunks": n,
                       "people": len(final_people), "profiles": sum(1 for p in final_people if p.has_profile)},
            "build": {"embedded": report.embedded, "reused_vectors": report.reused_vectors,
                      "deduplicated": report.deduplicated, "resumed": report.resumed,
                      "seconds": round(time.time() - t0, 2), "update": update, "rebuild": rebuild,
                      "window": window_size, **({"workers": sources.workers} if sources is not None else {}),
                      # the phases up to the manifest (its writing and the publication are not in)
                      "stages": _ordered(report.stages)},
            "command": [_shown_arg(a) for a in (command or sys.argv)],
        }
    except BaseException as e:
        writer.abort(e)
    if prev is not None:
        prev.close()  # (before the old version may be collected)
    report.version = writer.publish(manifest).name
    cache.discard()  # its vectors are in the published version now
    report.stages["publish"] = time.perf_counter() - t_publish
    report.seconds = time.time() - t0
    report.stages = _ordered(report.stages)
    return report


def _shown_arg(arg) -> str:
    """A command-line argument for the manifest: an index URI without its password."""
    return shown(arg) if is_uri(arg) else display(arg)


def read_forgotten(index_path) -> list[dict]:
    """People removed with `forget`: [{person_id, name, emails, names, handles, with_content, at}]."""
    return backend_for(index_path).read_forgotten(index_path)


def _forgotten(p: Person, entries: list[dict], content: bool = False) -> bool:
    for e in entries:
        if content and not e.get("with_content"):
            continue
        if (p.person_id == e["person_id"] or (p.email and p.email in e["emails"])
                or normalize_name(p.name) in e["names"] or set(p.handles.items()) & {tuple(h) for h in e["handles"]}):
            return True
    return False


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
