"""The folder backend's vector index: exact inner-product search over unit vectors in FAISS
(``IndexIDMap2(IndexFlatIP)``), whose ids are the chunk ids (``chunks.id`` = BM25 posting id)."""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

FILE = "vectors.faiss"
_ONE_THREAD = False


def one_search_thread() -> None:
    """One question searches with one OpenMP thread; concurrency comes from concurrent questions.

    On 2 cores with other work running, FAISS's OpenMP threads spin-wait for each other: a flat search
    over 100k vectors measured 50 ms median (300 ms p95) with 2 threads and 7 ms with 1
    (bench/bench_memory.py). Set once per process; builds only add vectors, which is unaffected.
    """
    global _ONE_THREAD
    if not _ONE_THREAD:
        faiss.omp_set_num_threads(1)
        _ONE_THREAD = True


class FaissVectors:
    """A vector index over chunk ids (the `VectorIndex` of index/base.py)."""

    def __init__(self, fi) -> None:
        self.fi = fi

    @classmethod
    def read(cls, vdir: Path) -> "FaissVectors":
        """Raises RuntimeError (FAISS's C++ message) when the file is unreadable."""
        return cls(faiss.read_index(str(Path(vdir) / FILE)))

    @classmethod
    def create(cls, dim: int) -> "FaissVectors":
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @property
    def dim(self) -> int:
        return self.fi.d

    def __len__(self) -> int:
        return self.fi.ntotal

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if len(ids):
            self.fi.add_with_ids(vecs, np.asarray(ids, dtype=np.int64))

    def write(self, vdir: Path) -> None:
        faiss.write_index(self.fi, str(Path(vdir) / FILE))

    def search(self, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The k chunks nearest the question among `allowed` ids (None: all), as (id, cosine)."""
        one_search_thread()
        n = self.fi.ntotal
        if n == 0 or (allowed is not None and len(allowed) == 0):
            return []
        k = min(k, n if allowed is None else len(allowed))
        params = None if allowed is None else faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        scores, ids = self.fi.search(qvec.reshape(1, -1).astype(np.float32), k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def get(self, i: int) -> np.ndarray:
        """One chunk's vector (KeyError when there is none)."""
        try:
            return self.fi.reconstruct(int(i))
        except RuntimeError:
            raise KeyError(i) from None

    def cosine(self, qvec: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to given chunks (vectors are unit length); absent ids left out."""
        out = {}
        for i in ids:
            try:
                out[i] = float(np.dot(self.fi.reconstruct(int(i)), qvec))
            except RuntimeError:
                pass
        return out

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every chunk, as copies."""
        fi = self.fi
        ids = faiss.vector_to_array(fi.id_map).astype(np.int64)
        inner = faiss.downcast_index(fi.index)
        xb = faiss.rev_swig_ptr(inner.get_xb(), fi.ntotal * fi.d).reshape(fi.ntotal, fi.d)
        return ids, np.array(xb, dtype=np.float32)
