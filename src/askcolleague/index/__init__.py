"""Storage: the protocols every backend implements (base.py); the folder backend — versions, lock and
manifest (folder.py), the SQLite chunk store (sqlite.py), FAISS vectors (faiss.py) and BM25 postings
(bm25.py); and the PostgreSQL + pgvector backend (postgres.py). `backend_for(location)` picks the
backend for an index location, `open_index(location)` opens its live version."""
from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import ConfigError
from .base import ChunkStore, IndexWriter, LexicalIndex, Selection, VectorIndex, is_empty
from .folder import (
    FolderBackend, FolderWriter, Index, IndexLock, check_model, current_version, live_version, read_manifest, status,
)

__all__ = ["ChunkStore", "IndexWriter", "LexicalIndex", "Selection", "VectorIndex", "is_empty", "FolderBackend",
           "FolderWriter", "Index", "IndexLock", "check_model", "current_version", "live_version", "read_manifest",
           "status", "open_index", "BACKENDS", "backend_for", "is_uri", "shown"]

# index location → backend: a folder path, or a URI whose scheme is registered here ("module:attribute",
# imported on first use, so the folder backend never loads a database driver)
BACKENDS: dict[str, type | str] = {
    "postgresql": "askcolleague.index.postgres:PgBackend",
    "postgres": "askcolleague.index.postgres:PgBackend",
}


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


def backend_for(location: str | Path):
    """The backend for an index location: the folder backend for a path, the registered one for a URI
    (`scheme://…`); a URI no backend registered is a ConfigError naming what is supported."""
    text = str(location)
    scheme = text.split("://", 1)[0].lower() if is_uri(text) else ""
    if not scheme:
        return FolderBackend
    if scheme not in BACKENDS:
        raise ConfigError(f"{text.split('://', 1)[0]}://…: no index backend for {scheme}://; use an index folder or "
                          + " or ".join(f"{s}://" for s in sorted(BACKENDS)))
    backend = BACKENDS[scheme]
    if isinstance(backend, str):
        module, _, attr = backend.partition(":")
        backend = BACKENDS[scheme] = getattr(importlib.import_module(module), attr)
    return backend


def shown(location) -> str:
    """A location (or any command-line argument) for messages and records: a URI without its password."""
    text = str(location)
    if not is_uri(text):
        return text
    try:
        return backend_for(text).display(text)
    except ConfigError:
        return text.split("://", 1)[0] + "://…"


def open_index(location: str | Path, settings=None, embedder=None):
    """The live version of the index at `location` (a folder, or a URI whose scheme a backend registered)."""
    return backend_for(location).open(location, settings, embedder=embedder)
