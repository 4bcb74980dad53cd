"""Storage: the protocols every backend implements (base.py) and the folder backend — versions,
lock and manifest (folder.py), the SQLite chunk store (sqlite.py), FAISS vectors (faiss.py) and BM25
postings (bm25.py). `open_index(location)` picks the backend for an index location."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import ChunkStore, IndexWriter, LexicalIndex, Selection, VectorIndex
from .folder import FolderWriter, Index, IndexLock, check_model, current_version, live_version, read_manifest, status

__all__ = ["ChunkStore", "IndexWriter", "LexicalIndex", "Selection", "VectorIndex", "FolderWriter", "Index",
           "IndexLock", "check_model", "current_version", "live_version", "read_manifest", "status", "open_index",
           "BACKENDS", "backend_for"]

# index location → backend: a folder path is the only one today; a server backend registers its scheme
BACKENDS: dict[str, type] = {}


def backend_for(location: str | Path) -> type:
    """The backend class for an index location: the folder backend for a path, the registered one for
    a URI (`scheme://…`); a URI no backend registered is a ConfigError naming what is supported."""
    text = str(location)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme and scheme not in BACKENDS:
        raise ConfigError(f"{text}: no index backend for {scheme}://; use an index folder"
                          + (f" or one of {', '.join(f'{s}://' for s in sorted(BACKENDS))}" if BACKENDS else ""))
    return BACKENDS.get(scheme, Index)


def open_index(location: str | Path, settings=None, embedder=None):
    """The live version of the index at `location` (a folder, or a URI whose scheme a backend registered)."""
    return backend_for(location).open(location, settings, embedder=embedder)
