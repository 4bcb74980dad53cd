"""Find sources under the paths a user gives and dispatch each to its loader.

A *source* is the unit of change detection: one file, or one Slack export (folder or .zip).
Every loader has the signature ``load(path: Path, key: str, max_bytes: int) -> list[Doc]`` and
raises ``LoadError`` (one line: the reason and the fix) for a file it cannot read.

Doc id conventions (the eval suite relies on them): a document's doc_id is its source key; a
thread's is ``f"{key}#{thread_id}"`` with thread_id = WXR ``post-<wp:post_id>``, Slack
``<channel>/<thread_ts>``, mbox the root Message-ID without ``<>``, JSONL the thread ``id``.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import LoadError
from ..models import Doc

DOCUMENT_EXTENSIONS = (
    ".md", ".markdown", ".txt", ".text", ".rst", ".html", ".htm", ".pdf", ".docx", ".pptx", ".eml",
)
PEOPLE_NAMES = ("people.yaml", "people.yml", "people.json", "people.csv")
IGNORED_NAMES = ("sources.yaml", "sources.yml", ".DS_Store", "Thumbs.db")


@dataclass
class SourceSpec:
    """A source found on disk: its path, its stable key, and the loader kind."""

    path: Path
    key: str
    kind: str  # document | wxr | slack | mbox | jsonl | unknown


def _is_slack_dir(p: Path) -> bool:
    return (p / "users.json").is_file() and (p / "channels.json").is_file()


def kind_of(path: Path) -> str:
    """The loader kind for a file or folder, by name and (for folders/zips) contents."""
    if path.is_dir():
        return "slack" if _is_slack_dir(path) else "folder"
    name = path.name.lower()
    ext = path.suffix.lower()
    if ext == ".zip":
        return "slack"
    if ext == ".xml":
        return "wxr"
    if ext == ".mbox" or name == "mbox":
        return "mbox"
    if ext == ".jsonl":
        return "jsonl"
    if ext in DOCUMENT_EXTENSIONS:
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


def discover(roots: list[Path]) -> tuple[list[SourceSpec], list[Path], list[tuple[str, str]]]:
    """Walk the given paths.

    Returns (sources, people files found by name, problems as (path, reason)). Hidden files,
    sidecars (``*.meta.yaml``) and ``sources.yaml`` are passed over; symlinked folders are not
    followed (no loops); an unknown extension is reported as a problem, not an error.
    """
    sources: list[SourceSpec] = []
    people: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: Path, root: Path) -> None:
        name = path.name
        if name.startswith(".") or name in IGNORED_NAMES or name.lower().endswith((".meta.yaml", ".meta.yml")):
            return
        if name.lower() in PEOPLE_NAMES:
            people.append(path)
            return
        kind = kind_of(path)
        key = source_key(path, root)
        if key in seen:
            return
        seen.add(key)
        if kind == "unknown":
            problems.append((str(path), f"unsupported file type '{path.suffix or name}'; supported: "
                             + " ".join(DOCUMENT_EXTENSIONS) + " .xml (WordPress) .zip/folder (Slack) .mbox .jsonl"))
            return
        sources.append(SourceSpec(path=path, key=key, kind=kind))

    for root in roots:
        root = Path(root)
        if not root.exists():
            problems.append((str(root), "no such file or folder; check the path"))
            continue
        if root.is_file() or _is_slack_dir(root):
            add(root, root)
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=lambda e: problems.append((str(e.filename), f"cannot read folder ({e.strerror})"))):
            d = Path(dirpath)
            keep = []
            for dn in sorted(dirnames):
                sub = d / dn
                if dn.startswith(".") or sub.is_symlink():
                    continue
                if _is_slack_dir(sub):
                    add(sub, root)
                else:
                    keep.append(dn)
            dirnames[:] = keep
            for fn in sorted(filenames):
                p = d / fn
                if p.is_symlink() and not p.exists():
                    problems.append((str(p), "broken symbolic link; fix or remove it"))
                    continue
                add(p, root)
    sources.sort(key=lambda s: s.key)
    return sources, people, problems


def get_loader(kind: str) -> Callable[[Path, str, int], list[Doc]]:
    """The loader function for a kind (imported lazily: unstructured is slow to import)."""
    if kind == "document":
        from .documents import load
    elif kind == "wxr":
        from .wxr import load
    elif kind == "slack":
        from .slack import load
    elif kind == "mbox":
        from .mbox import load
    elif kind == "jsonl":
        from .jsonl import load
    else:
        raise LoadError(f"unsupported source kind {kind!r}")
    return load


def load_source(spec: SourceSpec, max_bytes: int) -> list[Doc]:
    """Load one source; LoadError for anything wrong with the file. Never returns an empty list."""
    loader = get_loader(spec.kind)
    try:
        docs = loader(spec.path, spec.key, max_bytes)
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
        raise LoadError(f"could not parse ({type(e).__name__}: {msg}); check the file is a valid {spec.kind} file") from None
    docs = [d for d in docs if any(b.text.strip() for b in d.blocks)]
    if not docs:
        raise LoadError("no text found; add content or remove the file")
    return docs
