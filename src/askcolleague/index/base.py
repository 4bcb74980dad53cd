"""The storage seam: what the pipeline needs from an index, as small protocols.

One backend object may implement them all (today's folder: FAISS + SQLite + BM25 postings, see
folder.py). The contract that ties them: a chunk has one integer id, the same in the chunk store
(``chunks.id``), the vector index and the lexical index's postings; ids run 0..n-1 in a version.

`Selection` is what a filter or an asker's groups leave visible. It is opaque to callers: here an
array of chunk ids (None = everything), in a SQL backend a WHERE clause. Filters and access control
are applied by building a Selection first and passing it to every search, so nothing hidden is
ever ranked.
"""
from __future__ import annotations

from typing import Any, Iterable, Protocol

import numpy as np

from ..models import Person

Selection = Any  # an opaque value from ChunkStore.select (None: no restriction)


class ChunkStore(Protocol):
    def select(self, filters, person_ids: list[str] | None = None) -> Selection: ...
    def admits(self, selection: Selection, ids: Iterable[int]) -> set[int]: ...  # those of ids it admits
    def ids(self, selection: Selection) -> np.ndarray: ...  # every id it admits (tests, small uses)
    def visible(self, groups: list[str]) -> np.ndarray: ...
    def chunk_rows(self, ids: Iterable[int] | None = None) -> list[dict]: ...
    def links_for(self, chunk_ids: Iterable[int]) -> dict[int, list[tuple[str, str, float]]]: ...
    def people(self) -> list[Person]: ...
    def person(self, person_id: str) -> Person | None: ...
    def person_ids(self, person: str) -> list[str]: ...
    def people_counts(self, groups: list[str] | None = None) -> dict[str, dict[str, int]]: ...
    def facets(self, groups: list[str] | None = None) -> tuple[set[str], set[str]]: ...  # (source types, names)
    def mentions(self, word: str, groups: list[str] | None = None) -> bool: ...
    def sources(self) -> list[dict]: ...


class VectorIndex(Protocol):
    dim: int
    def search(self, qvec: np.ndarray, k: int, allowed: Selection = None) -> list[tuple[int, float]]: ...
    def get(self, i: int) -> np.ndarray: ...
    def cosine(self, qvec: np.ndarray, ids: list[int]) -> dict[int, float]: ...


class LexicalIndex(Protocol):
    def search(self, words: list[str], k: int, allowed: Selection = None,
               visible: np.ndarray | None = None) -> list[tuple[int, float]]: ...


class IndexWriter(Protocol):
    def add(self, sources: list[tuple], docs: list[dict], chunks: list, keys: list[str], people: list[Person],
            links: list[tuple[int, str, str, float]], vecs: np.ndarray, dim: int) -> None: ...
    def describe(self) -> dict: ...  # the manifest keys that say how the version is stored
    def publish(self, manifest: dict) -> Any: ...  # the new live version (its .name)
    def abort(self, e: BaseException | None = None) -> None: ...


def is_empty(selection: Selection) -> bool:
    """Whether a selection admits no chunk at all (None admits every chunk)."""
    if selection is None:
        return False
    empty = getattr(selection, "empty", None)
    return bool(empty) if empty is not None else len(selection) == 0


class Backend(Protocol):
    """What the commands need from a backend besides the protocols above (index/__init__.backend_for
    returns one for an index location): open the live version, follow it, build new versions."""
    name: str
    def location(self, loc) -> Any: ...  # the location as this backend keeps it (a Path, a URI)
    def display(self, loc) -> str: ...  # for messages: never a password
    def open(self, loc, settings=None, embedder=None) -> Any: ...  # the live version (store, vectors, bm25, …)
    def live_name(self, loc) -> str | None: ...  # the live version's name (one cheap read per request)
    def status(self, loc) -> dict: ...
    def lock(self, loc, wait: bool = False) -> Any: ...  # a context manager: one build or update at a time
    def previous(self, loc) -> Any: ...  # the live version to build from, or None (stale writes removed)
    def writer(self, loc, previous, need_bytes: int) -> IndexWriter: ...
    def read_forgotten(self, loc) -> list[dict]: ...
    def write_forgotten(self, loc, entries: list[dict]) -> None: ...
    def feedback(self, loc) -> Any: ...  # a feedback store (add, rows, delete, close)
    def has_feedback(self, loc) -> bool: ...
