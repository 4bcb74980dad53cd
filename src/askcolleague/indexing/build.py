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
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

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
    # (embedded + reused_vectors + deduplicated = chunks)
    deduplicated: int = 0
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
) -> BuildReport:
    """Build (or with ``update=True`` refresh) an index; return a BuildReport.

    Unchanged sources are carried over from the previous version without re-reading, and every
    chunk whose exact text was embedded before reuses its vector, so only new or changed
    files/threads reach the model. With ``rebuild=True`` nothing is reused (use it to change model).
    A file that fails is skipped with a warning; if an earlier version had it, that version is kept.

    The phases: which sources → the model → the previous version → discover → people files →
    read (or carry over) and chunk each source → profiles and identity → embed (reusing vectors) →
    write and publish the new version (index.folder.FolderWriter).
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
            return _build(roots, ppl_files, backend, index_path, settings, embedder, prev, rebuild, update, bar, warn,
                          command, t0, pre)
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


def _read_sources(specs: list[SourceSpec], old, same_chunker: bool, max_bytes: int,
                  settings: Settings, embedder: Embedder, chunker_cfg: ChunkerConfig, report: BuildReport,
                  bar, warn) -> tuple[list[dict], list[Chunk], list[tuple]]:
    """Phase 5: each source read (in the parse pool) and chunked, or carried over unchanged from the
    previous version; a file that fails keeps its previous version when there is one."""
    docs_rows: list[dict] = []
    chunks: list[Chunk] = []
    src_rows: list[tuple] = []
    old_sources = old.sources if old else {}
    pool = ParsePool(specs, max_bytes, settings, wanted=lambda s: not (same_chunker and s.key in old_sources),
                     load=load_source)  # sources parsed ahead in worker processes, with a timeout
    for spec in bar(specs, desc="Reading sources", unit="file"):
        try:
            h, size = source_hash(spec)
        except OSError as e:
            report.skipped.append(SourceError(display(spec.path), f"cannot read ({e.strerror})"))
            warn(f"{display(spec.path)}: cannot read ({e.strerror})")
            continue
        prev = old_sources.get(spec.key)
        if prev and prev["hash"] == h and prev["status"] == "ok" and same_chunker:
            src_chunks = [chunk_from_row(r) for r in old.store.chunks_of_source(spec.key)]
            src_docs = old.store.docs_of_source(spec.key)
            report.sources_reused += 1
        else:
            try:
                docs = pool.load(spec)
            except LoadError as e:
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
                else:
                    report.skipped.append(err)
                    warn(f"{display(spec.path)}: {e}")
                    continue
            else:
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
        docs_rows.extend(src_docs)
        chunks.extend(src_chunks)
        src_rows.append((spec.key, display(spec.path.absolute()), spec.kind, h, size, len(src_docs), len(src_chunks)))
    pool.close()
    return docs_rows, chunks, src_rows


def _people_and_links(chunks: list[Chunk], docs_rows: list[dict], resolver: IdentityResolver,
                      forgotten: list[dict]) -> tuple[list[Chunk], list[dict], list[Person], list[tuple]]:
    """Phase 6: identity resolution (every author → one person), forgotten people removed, the
    chunk↔person links, and the private-channel groups of their members."""
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
    return chunks, docs_rows, people, links


def _embed(chunks: list[Chunk], keys: list[str], embedder: Embedder, old, batch_size: int,
           report: BuildReport, bar) -> np.ndarray:
    """Phase 7: vectors reused by exact embed text, the rest embedded in length-sorted batches, each
    distinct embed text once (boilerplate, repeated headers, quoted mail: its copies share the vector)."""
    vecs = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    have = np.zeros(len(chunks), dtype=bool)
    if old is not None:
        by_key = old.vectors_by_key(keys)
        for k, h in enumerate(keys):
            v = by_key.get(h)
            if v is not None:
                vecs[k] = v
                have[k] = True
    todo: list[int] = []  # the first chunk of each embed key still without a vector
    first: dict[str, int] = {}
    copies: list[tuple[int, int]] = []  # (chunk, the chunk with the same embed key that is embedded)
    for k in range(len(chunks)):
        if have[k]:
            continue
        j = first.setdefault(keys[k], k)
        if j == k:
            todo.append(k)
        else:
            copies.append((k, j))
    todo.sort(key=lambda k: chunks[k].n_tokens)
    report.reused_vectors = int(have.sum())
    report.embedded = len(todo)
    report.deduplicated = len(copies)
    bs = max(batch_size, 1)
    with bar(total=len(todo), desc="Embedding", unit="chunk") as pb:
        for i in range(0, len(todo), bs):
            part = todo[i:i + bs]
            vecs[part] = embedder.embed_batch([chunks[k].embed_text for k in part])
            pb.update(len(part))
    if copies:
        dst, src = zip(*copies)
        vecs[list(dst)] = vecs[list(src)]
    return vecs


def _build(roots, ppl_files, backend, index_path, settings: Settings, embedder: Embedder, prev, rebuild: bool,
           update: bool, bar, warn, command, t0: float, pre: dict[str, float] | None = None) -> BuildReport:
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
    with _stage(report, "people"):
        resolver = IdentityResolver(profiles)

    chunker_cfg = ChunkerConfig(settings.chunk_tokens, settings.chunk_overlap)
    same_chunker = bool(old_manifest) and old_manifest.get("chunker") == chunker_cfg.to_dict()
    t = time.perf_counter()
    chunking_before = report.stages.get("chunk", 0.0)
    docs_rows, chunks, src_rows = _read_sources(specs, old, same_chunker, max_bytes, settings, embedder, chunker_cfg,
                                                report, bar, warn)
    # (the chunking inside is timed as `chunk`; the rest of the loop is reading and parsing)
    report.stages["parse"] = time.perf_counter() - t - (report.stages.get("chunk", 0.0) - chunking_before)
    if not chunks and (specs or not profiles):
        raise NothingIndexedError(
            f"nothing could be indexed ({len(report.skipped)} skipped); fix the files named above"
            + (f" — the previous index at {backend.display(index_path)} is unchanged" if prev else ""))

    # people removed with `askcolleague forget` stay removed, whatever the sources say
    with _stage(report, "people"):
        forgotten = backend.read_forgotten(index_path)
        profile_docs = _profile_docs([p for p in resolver.people() if p.has_profile and not _forgotten(p, forgotten)],
                                     lambda s: people_keys.get(s, s))
    # profiles become chunks too
    with _stage(report, "chunk"):
        for d in profile_docs:
            docs_rows.append(_doc_row(d))
            chunks.extend(chunk_doc(d, embedder, chunker_cfg))
    with _stage(report, "people"):
        chunks, docs_rows, people, links = _people_and_links(chunks, docs_rows, resolver, forgotten)

    with _stage(report, "embed"):
        keys = [embed_key(c) for c in chunks]
        vecs = _embed(chunks, keys, embedder, old, settings.batch_size, report, bar)

    old_ids_set = {(r["key"], r["hash"]) for r in old.sources.values()} if old is not None else None
    report.changed = rebuild or old_manifest is None or report.embedded > 0 or \
        old_ids_set != {(r[0], r[3]) for r in src_rows} or \
        (old_manifest or {}).get("people_files_hash") != _people_hash(all_people_files) or \
        (old_manifest or {}).get("forgotten") != len(forgotten)
    if update and not report.changed:
        report.version = prev.name
        report.docs, report.chunks, report.people = len(docs_rows), len(chunks), len(people)
        report.seconds = time.time() - t0
        report.stages = _ordered(report.stages)
        return report

    # write the new version; on any failure the partial folder is removed, and a full disk says so
    with _stage(report, "write"):
        need = len(chunks) * (embedder.dim * 4 + 512) + 3 * sum(len(c.text) + len(c.embed_text) for c in chunks)
        writer = backend.writer(index_path, prev, need)
        writer.add(src_rows, docs_rows, chunks, keys, people, links, vecs, embedder.dim)
    report.docs, report.chunks, report.people = len(docs_rows), len(chunks), len(people)
    t_publish = time.perf_counter()
    try:
        with _stage(report, "calibrate"):
            abstain = calibration.calibrate(writer.vectors, embedder)
        t_publish = time.perf_counter()
        encs = encodings_of(docs_rows)  # sources not read as plain UTF-8
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
            "counts": {"sources": len(src_rows), "documents": len(docs_rows), "chunks": len(chunks),
                       "people": len(people), "profiles": sum(1 for p in people if p.has_profile)},
            "build": {"embedded": report.embedded, "reused_vectors": report.reused_vectors,
                      "deduplicated": report.deduplicated,
                      "seconds": round(time.time() - t0, 2), "update": update, "rebuild": rebuild,
                      # the phases up to the manifest (its writing and the publication are not in)
                      "stages": _ordered(report.stages)},
            "command": [_shown_arg(a) for a in (command or sys.argv)],
        }
    except BaseException as e:
        writer.abort(e)
    if prev is not None:
        prev.close()  # (before the old version may be collected)
    report.version = writer.publish(manifest).name
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
