"""The embedding model's interface: texts in, L2-normalised float32 vectors out, and token counts
in the model's own tokenizer (the chunker's budget)."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors and counts tokens in its own tokenizer."""

    model_id: str  # recorded in the index manifest; an index refuses another model
    dim: int
    max_tokens: int  # the most word pieces the model reads, special tokens included
    special_tokens: int = 2  # [CLS] and [SEP]

    def __init__(self) -> None:
        self.calls = 0  # embed_batch calls (tests count these)
        self.texts_embedded = 0

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray: ...

    @abstractmethod
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the text's tokens, without special tokens."""

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of unit vectors."""
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = np.asarray(self._embed(texts), dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vecs / norms

    def count_tokens(self, text: str) -> int:
        return len(self.token_offsets(text))

    def describe(self) -> dict:
        return {"id": self.model_id, "dim": self.dim, "max_tokens": self.max_tokens}
