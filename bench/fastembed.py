"""A fast hashing embedder for measuring the build's memory and its stages other than the model
(`bench_scale.py`): model id ``hash:<dim>``, loaded with ``ASKCOLLEAGUE_PLUGINS=fastembed`` and
this folder on PYTHONPATH. Each word adds ±1 at two hashed positions; vectors are unit length. It
is not a language model: its vectors say nothing about meaning, only that a build handles N of them."""
from __future__ import annotations

import re
import zlib

import numpy as np

from askcolleague import embed
from askcolleague.embed import Embedder

_WORD = re.compile(r"\w+")


class HashEmbedder(Embedder):
    def __init__(self, dim: int = 384, max_tokens: int = 256) -> None:
        super().__init__()
        self.dim, self.max_tokens = dim, max_tokens
        self.model_id = f"hash:{dim}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            h = np.array([zlib.crc32(w.encode()) for w in _WORD.findall(t.lower())] or [0], dtype=np.uint64)
            np.add.at(out[i], (h % self.dim).astype(np.intp), np.where(h & 256, 1.0, -1.0))
            np.add.at(out[i], ((h >> 9) % self.dim).astype(np.intp), np.where(h & 512, 1.0, -1.0))
            if not out[i].any():
                out[i, 0] = 1.0
        return out

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


embed.register("hash:", lambda model, **kw: HashEmbedder(int(model.split(":", 1)[1] or 384)))
