"""Storage: the protocols every backend implements (base.py) and the folder backend — versions,
lock and manifest (folder.py), the SQLite chunk store (sqlite.py), FAISS vectors (faiss.py) and BM25
postings (bm25.py). `open_index(location)` picks the backend for an index location."""
from __future__ import annotations

from pathlib import Path

from .base import ChunkStore, IndexWriter, LexicalIndex, Selection, VectorIndex
from .folder import FolderWriter, Index, IndexLock, check_model, current_version, live_version, read_manifest, status

__all__ = ["ChunkStore", "IndexWriter", "LexicalIndex", "Selection", "VectorIndex", "FolderWriter", "Index",
           "IndexLock", "check_model", "current_version", "live_version", "read_manifest", "status", "open_index",
           "BACKENDS"]

# index location → backend: a folder path is the only one today; a server backend registers its scheme
BACKENDS: dict[str, type] = {}


def open_index(location: str | Path, settings=None, embedder=None):
    """The live version of the index at `location` (a folder, or a URI whose scheme a backend registered)."""
    scheme = str(location).split("://", 1)[0] if "://" in str(location) else ""
    return BACKENDS.get(scheme, Index).open(location, settings, embedder=embedder)
