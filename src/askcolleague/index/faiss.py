"""The folder backend's vector index: exact inner-product search over unit vectors in FAISS
(``IndexIDMap2(IndexFlatIP)``), whose ids are the chunk ids (``chunks.id`` = BM25 posting id)."""
from __future__ import annotations

import os
import struct
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


# -- streaming: the same file, written and read in bounded memory ------------------------------
# FAISS's own serialisation of IndexIDMap2(IndexFlatIP) (faiss/impl/index_write.cpp), which
# faiss.read_index reads back: for the map and then the flat index, a fourcc and a header
#   d int32 · ntotal int64 · two int64 placeholders (1 << 20) · is_trained uint8 · metric int32 (0 = IP)
# then the flat index's codes (size_t count of floats, then n·d float32) and the id map (size_t
# count, then n int64). tests/test_streaming_build.py checks the bytes equal faiss.serialize_index.
_HEADER = struct.Struct("<iqqqBi")
_MAP, _FLAT = b"IxM2", b"IxFI"
_CODES_AT = 2 * (4 + _HEADER.size)  # where the codes' count is; the codes follow it


class FlatFileWriter:
    """Writes `vectors.faiss` as vectors arrive, ids 0, 1, 2, … in order, holding none of them: a
    1M-chunk build does not keep its 1.5 GB of vectors in memory."""

    def __init__(self, vdir: Path, dim: int) -> None:
        self.path = Path(vdir) / FILE
        self.dim, self.n = dim, 0
        self.f = open(self.path, "wb")
        self._header()
        self.f.write(struct.pack("<Q", 0))

    def _header(self) -> None:
        for cc in (_MAP, _FLAT):
            self.f.write(cc + _HEADER.pack(self.dim, self.n, 1 << 20, 1 << 20, 1, 0))

    def add(self, vecs: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vecs, dtype="<f4")
        if vecs.ndim != 2 or vecs.shape[1] != self.dim:
            raise ValueError(f"vectors of shape {vecs.shape}, expected (n, {self.dim})")
        self.f.write(vecs.tobytes())
        self.n += len(vecs)

    def close(self) -> None:
        """The id map (0..n-1) and the counts in the headers; the file is then a FAISS index."""
        self.f.write(struct.pack("<Q", self.n))
        for i in range(0, self.n, 1 << 20):
            self.f.write(np.arange(i, min(self.n, i + (1 << 20)), dtype="<i8").tobytes())
        self.f.seek(0)
        self._header()
        self.f.write(struct.pack("<Q", self.n * self.dim))
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()

    def abort(self) -> None:
        if not self.f.closed:
            self.f.close()


def read_flat(vdir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, vectors) of a `vectors.faiss` as memory maps (nothing read until used), or None when
    the file is not a plain IndexIDMap2(IndexFlatIP) (then read it with FaissVectors.read)."""
    path = Path(vdir) / FILE
    try:
        with open(path, "rb") as f:
            head = f.read(_CODES_AT + 8)
        if len(head) < _CODES_AT + 8 or head[:4] != _MAP or head[4 + _HEADER.size:8 + _HEADER.size] != _FLAT:
            return None
        d, n, *_rest, metric = _HEADER.unpack(head[4:4 + _HEADER.size])
        (count,) = struct.unpack("<Q", head[_CODES_AT:_CODES_AT + 8])
        if metric != 0 or count != n * d or d <= 0:
            return None
        at = _CODES_AT + 8
        if path.stat().st_size != at + 4 * n * d + 8 + 8 * n:
            return None
        vecs = np.memmap(path, dtype="<f4", mode="r", offset=at, shape=(n, d)) if n else np.zeros((0, d), np.float32)
        ids = np.memmap(path, dtype="<i8", mode="r", offset=at + 4 * n * d + 8, shape=(n,)) if n else np.zeros(0, np.int64)
        return ids, vecs
    except OSError:
        return None
