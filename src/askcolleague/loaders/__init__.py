"""Find sources under the paths a user gives and dispatch each to its loader.

A *source* is the unit of change detection: one file, or one Slack export (folder or .zip).
Every loader has the signature ``load(path: Path, key: str, max_bytes: int) -> list[Doc]`` and
raises ``LoadError`` (one line: the reason and the fix) for a file it cannot read.

Doc id conventions (the eval suite relies on them): a document's doc_id is its source key; a
thread's is ``f"{key}#{thread_id}"`` with thread_id = WXR ``post-<wp:post_id>``, Slack
``<channel>/<thread_ts>``, mbox the root Message-ID without ``<>``, JSONL the thread ``id``, Stack
Exchange the question's ``Id``. A file inside an archive (or attached to an Outlook message) has the key
``archive.zip!/path/in/archive``; its docs' source is the archive.
"""
from __future__ import annotations

import dataclasses
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import LoadError
from ..models import Doc
from .base import MAX_EXPORT_MEMBERS, display
from .meta import SIDECAR_SUFFIXES, apply_sidecar
from .ocr import IMAGE_EXTENSIONS
from .office import OFFICE_EXTENSIONS
from .sheets import SHEET_EXTENSIONS

DOCUMENT_EXTENSIONS = (
    ".md", ".markdown", ".txt", ".text", ".rst", ".html", ".htm", ".pdf", ".docx", ".pptx", ".eml",
)
# Read by the document loader too (one document per file), through their own modules.
MORE_DOCUMENT_EXTENSIONS = SHEET_EXTENSIONS + OFFICE_EXTENSIONS + IMAGE_EXTENSIONS
PEOPLE_NAMES = ("people.yaml", "people.yml", "people.json", "people.csv")
IGNORED_NAMES = ("sources.yaml", "sources.yml", ".DS_Store", "Thumbs.db")


@dataclass
class SourceSpec:
    """A source found on disk: its path, its stable key, and the loader kind."""

    path: Path
    key: str
    kind: str  # document | wxr | xml | slack | stackexchange | archive | mbox | jsonl | unknown


def _is_slack_dir(p: Path) -> bool:
    return (p / "users.json").is_file() and (p / "channels.json").is_file()


def _zip_kind(path: Path) -> str:
    """'slack' for a zip holding a Slack export (users.json and channels.json at its top or in one
    folder) or one that cannot be opened (the Slack loader says why), else 'archive'."""
    try:
        with open(path, "rb") as f:  # the member count first: a zip of millions of members is refused
            end = zipfile._EndRecData(f)  # by its loader before a ZipInfo is made for each
            if not end or end[zipfile._ECD_ENTRIES_TOTAL] > MAX_EXPORT_MEMBERS:
                return "slack"
        with zipfile.ZipFile(path) as z:
            names = {n.rstrip("/") for n in z.namelist()}
    except Exception:
        return "slack"
    tops = {n.rsplit("/", 1)[0] if "/" in n else "" for n in names if n.rsplit("/", 1)[-1] == "users.json"}
    return "slack" if any((f"{t}/channels.json" if t else "channels.json") in names for t in tops) else "archive"


def _xml_kind(path: Path) -> str:
    """'wxr' for a WordPress export (its namespace in the first 64 KB), else 'xml'."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return "wxr"
    return "wxr" if b"wordpress.org/export/" in head else "xml"


def kind_of(path: Path) -> str:
    """The loader kind for a file or folder, by name and (for folders, zips, 7z and XML) contents."""
    from .stackexchange import (  # (lazy: a loader's module loads when a file of its kind is first read)
        is_dump_7z, is_dump_dir, is_dump_zip,
    )

    if path.is_dir():
        return "slack" if _is_slack_dir(path) else "stackexchange" if is_dump_dir(path) else "folder"
    name = path.name.lower()
    ext = path.suffix.lower()
    if ext == ".zip":
        kind = _zip_kind(path)
        return "stackexchange" if kind == "archive" and is_dump_zip(path) else kind
    if ext == ".7z":
        return "stackexchange" if is_dump_7z(path) else "archive"
    if ext == ".xml":
        return _xml_kind(path)
    if ext == ".mbox" or name == "mbox":
        return "mbox"
    if ext == ".jsonl":
        return "jsonl"
    if ext in DOCUMENT_EXTENSIONS or ext in MORE_DOCUMENT_EXTENSIONS:
        return "document"
    return "unknown"


def source_key(path: Path, root: Path) -> str:
    """A stable key: the path relative to the parent of the root the user named (posix)."""
    root = root.absolute()
    base = root.parent if root.is_dir() else root.parent
    try:
        rel = path.absolute().relative_to(base)
    except ValueError:
        rel = Path(path.name)
    return rel.as_posix()


def _outside(path: Path, root_real: Path) -> Path | None:
    """Where a symbolic link leads when that is outside `root_real` (else None)."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return path
    return None if target == root_real or target.is_relative_to(root_real) else target


def discover(roots: list[Path], follow_symlinks: bool = False
             ) -> tuple[list[SourceSpec], list[Path], list[tuple[str, str]]]:
    """Walk the given paths.

    Returns (sources, people files found by name, problems as (path, reason)). Hidden files,
    sidecars (``*.meta.yaml``) and ``sources.yaml`` are passed over; an unknown extension is
    reported as a problem, not an error. Symbolic links inside a folder are read only where they
    stay inside it: a file link leading outside is a problem (unless `follow_symlinks`), folder
    links are not followed (no loops; with `follow_symlinks`, those leading outside are, once
    each). A path the user names directly is read wherever it leads. Keys are valid UTF-8: file
    name bytes that are not are shown as ``\\xff`` escapes.
    """
    sources: list[SourceSpec] = []
    people: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    hint = "copy it in or set ASKCOLLEAGUE_FOLLOW_SYMLINKS=1"

    def add(path: Path, root: Path, root_real: Path | None = None) -> None:
        name = path.name
        if name.startswith(".") or name in IGNORED_NAMES or name.lower().endswith(SIDECAR_SUFFIXES):
            return
        if root_real is not None and not follow_symlinks and path.is_symlink():
            target = _outside(path, root_real)
            if target is not None:
                problems.append((display(path), f"symbolic link to a file outside {display(root)} "
                                 f"({display(target)}); {hint}"))
                return
        if not path.is_dir() and not path.is_file():
            problems.append((display(path), "not a regular file (a pipe, socket or device); remove it"))
            return
        if name.lower() in PEOPLE_NAMES:
            people.append(path)
            return
        kind = kind_of(path)
        key = display(source_key(path, root))
        if key in seen:
            return
        seen.add(key)
        if kind == "unknown":
            problems.append((display(path), f"unsupported file type '{display(path.suffix or name)}'; supported: "
                             + " ".join(DOCUMENT_EXTENSIONS + MORE_DOCUMENT_EXTENSIONS)
                             + " .xml .zip .7z .mbox .jsonl, Slack and Stack Exchange exports"))
            return
        sources.append(SourceSpec(path=path, key=key, kind=kind))
        if kind == "stackexchange":  # its Users.xml: people profiles (people.load_people)
            people.append(_users_file(path))

    for root in roots:
        root = Path(root)
        if not root.exists():
            problems.append((display(root), "no such file or folder; check the path"))
            continue
        if root.is_file() or _is_slack_dir(root) or _is_dump_dir(root):
            add(root, root)  # named by the user: read wherever a link leads
            continue
        root_real = root.resolve()
        visited = {root_real}

        def walk_error(e: OSError) -> None:
            problems.append((display(e.filename), f"cannot read folder ({e.strerror})"))

        for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_symlinks, onerror=walk_error):
            d = Path(dirpath)
            keep = []
            for dn in sorted(dirnames):
                sub = d / dn
                if dn.startswith("."):
                    continue
                if sub.is_symlink():
                    target = _outside(sub, root_real)
                    if target is None:
                        continue  # inside the folder: its files are read where they are
                    if not follow_symlinks:
                        problems.append((display(sub), f"symbolic link to a folder outside {display(root)} "
                                         f"({display(target)}), not followed; {hint}"))
                        continue
                    if target in visited or not target.is_dir():
                        continue  # a loop, or a folder already read
                    visited.add(target)
                if _is_slack_dir(sub) or _is_dump_dir(sub):
                    add(sub, root, root_real)
                else:
                    keep.append(dn)
            dirnames[:] = keep
            for fn in sorted(filenames):
                p = d / fn
                if p.is_symlink() and not p.exists():
                    problems.append((display(p), "broken symbolic link; fix or remove it"))
                    continue
                add(p, root, root_real)
    sources.sort(key=lambda s: s.key)
    return sources, people, problems


def _is_dump_dir(p: Path) -> bool:
    from .stackexchange import is_dump_dir  # (lazy: a loader's module loads when a file of its kind is first read)

    return is_dump_dir(p)


def _users_file(path: Path) -> Path:
    """The people file of a Stack Exchange dump: its Users.xml (a folder) or the .7z / .zip itself."""
    if path.is_dir():
        return next((p for p in path.iterdir() if p.name.lower() == "users.xml"), path / "Users.xml")
    return path


def get_loader(kind: str) -> Callable[[Path, str, int], list[Doc]]:
    """The loader function for a kind (imported lazily: unstructured is slow to import)."""
    if kind == "document":
        from .documents import load  # (lazy: a loader's module loads when a file of its kind is first read)
    elif kind == "wxr":
        from .wxr import load  # (lazy: a loader's module loads when a file of its kind is first read)
    elif kind == "slack":
        from .slack import load  # (lazy: a loader's module loads when a file of its kind is first read)
    elif kind == "mbox":
        from .mbox import load  # (lazy: a loader's module loads when a file of its kind is first read)
    elif kind == "jsonl":
        from .jsonl import load  # (lazy: a loader's module loads when a file of its kind is first read)
    elif kind == "xml":
        from .xmldoc import load  # (lazy: a loader's module loads when a file of its kind is first read)
    elif kind == "archive":
        from .archives import load  # (lazy: a loader's module loads when a file of its kind is first read)
    elif kind == "stackexchange":
        from .stackexchange import load  # (lazy: a loader's module loads when a file of its kind is first read)
    else:
        raise LoadError(f"unsupported source kind {kind!r}")
    return load


def load_source(spec: SourceSpec, max_bytes: int) -> list[Doc]:
    """Load one source; LoadError for anything wrong with the file. Never returns an empty list.

    The sidecar beside the source (``FILE.meta.yaml``) is applied here, for every kind (loaders.meta).
    """
    loader = get_loader(spec.kind)
    try:
        docs = loader(spec.path, spec.key, max_bytes)
        docs = apply_sidecar(docs, spec.path, spec.kind)
    except LoadError:
        raise
    except zipfile.BadZipFile:
        raise LoadError("not a valid .zip file; re-export it") from None
    except RecursionError:
        raise LoadError("structure nested too deeply; flatten the file") from None
    except MemoryError:
        raise LoadError("too large to load in memory; split the file") from None
    except Exception as e:  # a parser bug or a malformed file must never abort the whole ingest
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        raise LoadError(f"could not parse ({type(e).__name__}: {display(msg)}); check the file is a valid {spec.kind} file") from None
    docs = [valid_text(d) for d in docs if any(b.text.strip() for b in d.blocks)]
    if not docs:
        raise LoadError("no text found; add content or remove the file")
    return docs


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def valid_text(obj: Any) -> Any:
    """Lone surrogates (JSON ``\\ud800`` escapes, undecodable file names) replaced by U+FFFD, in place:
    they are not valid UTF-8, and SQLite and JSON writers would fail on them."""
    if isinstance(obj, str):
        return _SURROGATE.sub("\ufffd", obj) if _SURROGATE.search(obj) else obj
    if isinstance(obj, list):
        return [valid_text(v) for v in obj]
    if isinstance(obj, dict):
        return {valid_text(k): valid_text(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            setattr(obj, f.name, valid_text(getattr(obj, f.name)))
        return obj
    return obj


def encodings_of(doc_rows: list[dict]) -> dict[str, str]:
    """{source key: encoding} for the sources whose documents record one (``meta.encoding``, set
    when a text file was not read as plain UTF-8): the manifest's ``sources[].encoding``."""
    found: dict[str, set[str]] = {}
    for d in doc_rows:
        enc = (d.get("meta") or {}).get("encoding")
        if enc:
            found.setdefault(d["source"], set()).add(str(enc))
    return {k: ", ".join(sorted(v)) for k, v in found.items()}
