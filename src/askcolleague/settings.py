"""Every setting declared once: name, default, help, environment variable."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import ConfigError


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    cast: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return "ASKCOLLEAGUE_" + self.name.upper()


def _threshold(v: str) -> float | str:
    """`auto` or a number."""
    v = str(v).strip().lower()
    return "auto" if v == "auto" else float(v)


def _bool(v: str) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


SETTINGS: tuple[Setting, ...] = (
    Setting("index", "indexes/default", "Index folder (or postgresql:// URI) used when `--index` is not given."),
    Setting("model", "", "Path of a local sentence-transformers model folder; empty = the bundled all-MiniLM-L6-v2."),
    Setting("chunk_tokens", 200, "Token budget of a chunk in the embedding model's tokenizer (context line included; model limit 256).", int),
    Setting("chunk_overlap", 32, "Tokens a chunk goes back over when the chunk before it had to cut a sentence (a chunk that ends at a sentence end is not overlapped).", int),
    Setting("max_file_mb", 50.0, "Files larger than this many MB are skipped with a warning (a `.zip` export may expand to 10× this).", float),
    Setting("runtime", "onnx-int8", "Embedding runtime: `onnx-int8` (ONNX Runtime, fused graph with SmoothQuant scaling, int8 but for one MatMul: cosine >= 0.99 of the fp32 model, ~2.4x torch), `onnx` (fp32, the same vectors as torch), `onnx-int8-fast` (an older int8 recipe, ~2x torch at cosine 0.98; kept so that indexes built with it, which record their own model id, still open) or `torch` (sentence-transformers).", str),
    Setting("batch_size", 32, "Embedding batch size (texts are length-sorted first).", int),
    Setting("build_window", 2048, "Chunks a build embeds and writes at a time: with the few sources read ahead, this sets its memory, whatever the corpus's size (about 10 KB a chunk).", int),
    Setting("threads", 0, "Threads for embedding (0 = all cores).", int),
    Setting("k", 8, "Passages retrieved for an answer.", int),
    Setting("mode", "hybrid", "Retrieval mode: hybrid, dense or bm25.", str),
    Setting("rrf_k", 60, "Reciprocal-rank-fusion constant (Cormack et al. 2009); not a top-k.", int),
    Setting("max_per_doc", 2, "At most this many chunks of one document or thread in the top k.", int),
    Setting("people_depth", 50, "Chunks (N >> k) scanned to rank people who know about a question.", int),
    Setting("people_half_life_days", 0.0, "Recency decay of a person's evidence (half-life in days); 0 = off.", float),
    Setting("abstain_threshold", "auto", "Abstain when the best passage's cosine similarity to the question is below this; `auto` = the index's own calibration (`index status` shows it: at most 0.42, lower where unrelated questions score low on this corpus), or a number (`askcolleague eval` reports the best value for a suite).", _threshold),
    Setting("llm_base_url", "", "OpenAI-compatible server for generated answers (e.g. http://127.0.0.1:11434/v1); empty = extractive answers, no network."),
    Setting("llm_model", "", "Model name sent to the LLM server."),
    Setting("llm_api_key", "", "API key for the LLM server (if it needs one)."),
    Setting("llm_timeout", 120.0, "Seconds to wait for the LLM server before falling back to the extractive answer.", float),
    Setting("llm_max_tokens", 512, "Most tokens the LLM may generate for one answer.", int),
    Setting("llm_context_tokens", 3000, "tiktoken (cl100k) budget for the passages given to the LLM.", int),
    Setting("users_file", "", "Web login: users file (YAML or JSON) of usernames, scrypt password hashes and the person each answers as; empty = no login, every passage visible (see `askcolleague users add`)."),
    # web login security: failed-login limits, login session timeouts, users file grace period
    Setting("login_max_failures", 5, "Web login: failed logins for one username (within the window) before it is locked out; 0 = no limit.", int),
    Setting("login_max_address_failures", 20, "Web login: failed logins from one client address (within the window) before it is locked out; 0 = no limit (behind a reverse proxy every client has the proxy's address).", int),
    Setting("login_window_seconds", 300.0, "Web login: the window in which failed logins are counted.", float),
    Setting("login_lockout_seconds", 60.0, "Web login: the first lockout; each further lockout of the same username or address doubles it (at most 64x).", float),
    Setting("session_idle_minutes", 60.0, "Web login: a login session ends after this many minutes without a request; 0 = never.", float),
    Setting("session_max_hours", 12.0, "Web login: a login session ends this many hours after the login, however active; 0 = never.", float),
    Setting("users_file_grace_seconds", 5.0, "Web login: when the users file goes missing or stops parsing, the last good version is used for this many seconds (an editor saving), then every login and request is refused until it is fixed.", float),
    # ingest safety (hostile input)
    Setting("follow_symlinks", False, "Read symbolic links inside a source folder that lead outside it (files, and folders once each); off = such links are skipped with a warning.", _bool),
    # file formats (loaders): OCR, spreadsheets, archives, the parse pool
    Setting("ocr", True, "OCR images and PDF pages without a text layer with Tesseract (Debian `tesseract-ocr`); off = such files are skipped with a reason.", _bool),
    Setting("ocr_languages", "eng", "Tesseract languages for OCR, joined by `+` (e.g. `eng+deu`); each needs its Debian package `tesseract-ocr-<lang>`."),
    Setting("sheet_max_rows", 100_000, "Rows read from one sheet of a spreadsheet or CSV/TSV file; the rest is skipped with a warning naming the file.", int),
    Setting("sheet_max_cells", 2_000_000, "Non-empty cells read from one spreadsheet file (all sheets); the rest is skipped with a warning naming the file.", int),
    Setting("archive_max_mb", 500.0, "A `.zip` or `.7z` archive of documents (or a Stack Exchange `.7z` or `.zip`) may unpack to at most this many MB.", float),
    Setting("archive_max_members", 10_000, "Files one `.zip` or `.7z` archive of documents may hold.", int),
    Setting("parse_workers", 0, "Worker processes that parse sources during a build (0 = auto: one per core, at most 4, when there are images, .doc/.ppt, .msg or archives to parse or 200+ sources, else none; 1 = parse in the build's own process).", int),
    Setting("parse_timeout", 300.0, "Seconds one source may take to parse in a worker before it is stopped and skipped with a reason.", float),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass
class Settings:
    """Resolved settings: defaults, overridden by environment variables, overridden by arguments."""

    values: dict[str, Any] = field(default_factory=dict)

    if TYPE_CHECKING:  # each setting as a typed attribute, for readers and type checkers (tests/test_docs.py keeps it complete)
        index: str
        model: str
        chunk_tokens: int
        chunk_overlap: int
        max_file_mb: float
        runtime: str
        batch_size: int
        build_window: int
        threads: int
        k: int
        mode: str
        rrf_k: int
        max_per_doc: int
        people_depth: int
        people_half_life_days: float
        abstain_threshold: float | str
        llm_base_url: str
        llm_model: str
        llm_api_key: str
        llm_timeout: float
        llm_max_tokens: int
        llm_context_tokens: int
        users_file: str
        login_max_failures: int
        login_max_address_failures: int
        login_window_seconds: float
        login_lockout_seconds: float
        session_idle_minutes: float
        session_max_hours: float
        users_file_grace_seconds: float
        follow_symlinks: bool
        ocr: bool
        ocr_languages: str
        sheet_max_rows: int
        sheet_max_cells: int
        archive_max_mb: float
        archive_max_members: int
        parse_workers: int
        parse_timeout: float

    @classmethod
    def load(cls, **overrides: Any) -> "Settings":
        vals = {}
        for s in SETTINGS:
            v = s.default
            if s.env in os.environ and os.environ[s.env] != "":
                raw = os.environ[s.env]
                try:
                    v = s.cast(raw)
                except ValueError as e:

                    raise ConfigError(f"{s.env}={raw!r} is not valid ({e}); {s.help}") from None
            vals[s.name] = v
        for k, v in overrides.items():
            if k not in _BY_NAME:
                raise KeyError(f"unknown setting {k!r}")
            if v is not None:
                vals[k] = v
        return cls(vals)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None
