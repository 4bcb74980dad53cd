"""Test doubles that register like real parts: a deterministic bag-of-words embedder for fast unit
tests (model id ``fake:hashing-bow``). Imported by conftest.py; a subprocess that builds with
``--model fake:…`` gets it through ``ASKCOLLEAGUE_PLUGINS=fakes`` with this folder on PYTHONPATH."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from askcolleague import embed
from askcolleague.embed import Embedder


class FakeEmbedder(Embedder):
    """Deterministic bag-of-words hashing embedder for fast unit tests (not for real use)."""

    model_id = "fake:hashing-bow"

    def __init__(self, dim: int = 64, max_tokens: int = 256) -> None:
        super().__init__()
        self.dim = dim
        self.max_tokens = max_tokens

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int(hashlib.md5(w.encode()).hexdigest()[:8], 16)
                out[i, h % self.dim] += 1.0 if (h >> 8) & 1 else -1.0
            if not out[i].any():
                out[i, 0] = 1.0
        return out

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


embed.register("fake:", lambda model, **kw: FakeEmbedder())


def fakes_env() -> dict[str, str]:
    """os.environ with this folder on PYTHONPATH (for `python -c` workers that import fakes)."""
    here = str(Path(__file__).resolve().parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
