"""Embedding models: `get_embedder(model, runtime)` loads one once per process.

Runtimes: ``onnx`` (default), ``onnx-int8``, ``onnx-int8-fast`` (embed/onnx.py) and ``torch``
(embed/torch.py). Another model family registers a prefix of model ids: ``register("mine:",
factory)``, where ``factory(model, batch_size=, threads=)`` returns an `Embedder`; modules named in
``ASKCOLLEAGUE_PLUGINS`` (comma-separated) are imported on first use so that they can register (the
tests' deterministic fake registers ``fake:`` this way).
"""
from __future__ import annotations

import importlib
import os
import threading
from typing import Callable

from ..errors import ConfigError
from ..settings import Settings
from .base import BUNDLED_MODEL_ID, Embedder
from .onnx import OnnxEmbedder
from .torch import SentenceTransformerEmbedder

__all__ = ["BUNDLED_MODEL_ID", "Embedder", "SentenceTransformerEmbedder", "get_embedder", "register",
           "model_setting_for", "runtime_for", "RUNTIMES"]

_registry: dict[str, Callable[..., Embedder]] = {}
_plugins_loaded = False


def register(prefix: str, factory: Callable[..., Embedder]) -> None:
    """Model ids starting with `prefix` are loaded by `factory(model, batch_size=, threads=)`."""
    _registry[prefix] = factory


def _registered(model: str | None) -> Callable[..., Embedder] | None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for name in filter(None, (m.strip() for m in os.environ.get("ASKCOLLEAGUE_PLUGINS", "").split(","))):
            try:
                importlib.import_module(name)
            except ImportError as e:
                raise ConfigError(f"ASKCOLLEAGUE_PLUGINS: cannot import {name!r} ({e}); fix the module name "
                                  "or its PYTHONPATH") from None
    return next((f for p, f in _registry.items() if model and model.startswith(p)), None)


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
        runtime = Settings.load().runtime
    runtime = _check_runtime(runtime)
    plugin = _registered(model)
    if plugin is not None:
        runtime = "plugin"
    key = (model or "", batch_size, threads, runtime)
    with _cache_lock:
        if key not in _cache:
            if plugin is not None:
                _cache[key] = plugin(model, batch_size=batch_size, threads=threads)
            elif runtime == "torch":
                _cache[key] = SentenceTransformerEmbedder(model or None, batch_size=batch_size, threads=threads)
            else:

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
        runtime = Settings.load().runtime
    if model_id.endswith(INT8_FAST_SUFFIX):
        return "onnx-int8-fast"
    if _registered(model_id) is not None:
        return runtime
    return "onnx" if runtime == "onnx-int8-fast" else _check_runtime(runtime)
