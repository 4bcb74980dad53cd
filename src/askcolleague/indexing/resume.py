"""Vectors a build has embedded, kept on disk by embed key until the build is published: a build that
is killed (Ctrl-C, `kill -9`, the machine's out-of-memory killer, a full disk) restarts from them.

    <cache>/model.json    the model (id, dimension) the vectors are from: another model starts afresh
    <cache>/vectors.f32   the vectors, float32, in the order they were embedded
    <cache>/keys.txt      their embed keys (sha256 of the exact text embedded), one per line

Each batch's vectors are written before its keys, so a key always has its vector; what a kill cut
short (a torn last line, vectors without keys) is cut off when the cache is opened again. The build
looks a chunk up here before embedding it, so the cache also serves the identical texts of one
build (embedded once). It is removed when its build is published. For a folder index it lives in
the index folder (``.resume/``); for PostgreSQL in the user's cache folder, one per index location.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

FORMAT = "askcolleague-resume-1"


class ResumeCache:
    def __init__(self, folder: Path, model: dict, dim: int) -> None:
        self.folder, self.dim = Path(folder), int(dim)
        want = {"format": FORMAT, "model": model.get("id"), "dim": self.dim}
        self.rows: dict[str, int] = {}
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "model.json"
        try:
            same = json.loads(meta.read_text(encoding="utf-8")) == want
        except (OSError, ValueError):
            same = False
        if not same:
            for f in ("keys.txt", "vectors.f32"):
                (self.folder / f).unlink(missing_ok=True)
            meta.write_text(json.dumps(want), encoding="utf-8")
        self._vpath, self._kpath = self.folder / "vectors.f32", self.folder / "keys.txt"
        keys: list[str] = []
        if self._kpath.is_file():
            with open(self._kpath, "rb") as f:
                for line in f:
                    if not line.endswith(b"\n") or len(line) != 65:
                        break  # a torn last line
                    keys.append(line[:64].decode("ascii"))
        have = self._vpath.stat().st_size // (4 * self.dim) if self._vpath.is_file() else 0
        keys = keys[:have]
        with open(self._vpath, "ab") as f:
            f.truncate(len(keys) * 4 * self.dim)
        with open(self._kpath, "ab") as f:
            f.truncate(len(keys) * 65)
        for i, k in enumerate(keys):
            self.rows.setdefault(k, i)
        self.n = self.loaded = len(keys)  # rows a killed build left: `loaded`; all rows: `n`
        self._v = open(self._vpath, "ab")
        self._k = open(self._kpath, "ab")
        self._r = open(self._vpath, "rb")

    def get_many(self, keys: list[str]) -> dict[str, tuple[np.ndarray, bool]]:
        """{key: (vector, from a killed build)} for the keys the cache holds."""
        out: dict[str, tuple[np.ndarray, bool]] = {}
        size = 4 * self.dim
        for k in keys:
            i = self.rows.get(k)
            if i is None or k in out:
                continue
            self._r.seek(i * size)
            out[k] = (np.frombuffer(self._r.read(size), dtype="<f4").copy(), i < self.loaded)
        return out

    def add(self, keys: list[str], vecs: np.ndarray) -> None:
        if not keys:
            return
        self._v.write(np.ascontiguousarray(vecs, dtype="<f4").tobytes())
        self._v.flush()  # (in the kernel's hands: a killed process loses nothing; a power cut may)
        self._k.write("".join(f"{k}\n" for k in keys).encode("ascii"))
        self._k.flush()
        for j, k in enumerate(keys):
            self.rows.setdefault(k, self.n + j)
        self.n += len(keys)

    def close(self) -> None:
        for f in (self._v, self._k, self._r):
            f.close()

    def discard(self) -> None:
        """After the build is published: its vectors are in the index now."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

